#!/usr/bin/env bash
# Sets everything up (npm packages, Docker engine, shed-base image), builds Shed,
# starts a shed-server, creates a shed from examples/hello and runs a command in it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh
npm run --silent build

demo=$(mktemp -d /tmp/shed-demo.XXXXXX)
export SHED_CONFIG="$demo/cli/config.yaml"
mkdir -p "$demo/cli"
cat >"$demo/server.yaml" <<YAML
name: demo
http_port: 0
ssh_port: 0
data_dir: $demo/server-data
YAML
"$root/bin/shed-server" serve --config "$demo/server.yaml" >"$demo/server.out" 2>"$demo/server.log" &
server_pid=$!
cleanup() {
  "$root/bin/shed" delete hello --force >/dev/null 2>&1 || true
  kill "$server_pid" 2>/dev/null || true
}
trap cleanup EXIT
# The server prints one JSON line when it is ready.
for _ in $(seq 1 100); do
  [ -s "$demo/server.out" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$demo/server.log" >&2; exit 1; }
  sleep 0.1
done
http_port=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).http_port)' "$demo/server.out")

# A repository to create the shed from: examples/hello as its own git repository.
cp -r examples/hello "$demo/hello"
git -C "$demo/hello" init -q -b main
git -C "$demo/hello" add .
git -C "$demo/hello" -c user.email=demo@shed.invalid -c user.name=demo commit -qm "hello example"

set -x
"$root/bin/shed-server" token --config "$demo/server.yaml" | "$root/bin/shed" server add 127.0.0.1 --port "$http_port" --name demo --token-file -
"$root/bin/shed" create hello --repo "$demo/hello"
"$root/bin/shed" exec hello -- hello
"$root/bin/shed" status hello
"$root/bin/shed" list
