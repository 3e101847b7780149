import { chmodSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { AgentState } from "./agent-state.js";
import { serveConnection } from "./connection.js";

/**
 * shed-agent: the process inside each VM (runs as root, started by the image's
 * boot service). It serves the agent protocol (src/protocol/agent-*.ts) on
 * every --listen address:
 *   --listen exec=unix:/run/shed-agent/exec.sock --listen control=tcp:0.0.0.0:1026 [--secret-file F]
 * Both roles speak the same protocol (exec, tar, forwards, health, drain, messages);
 * the names follow the seed's two vsock ports. It never opens vsock itself: in
 * the guest, socat bridges vsock to its Unix sockets.
 */

/** The stop sequence's budget (the seed): in-flight work gets this long after SIGTERM. */
const SIGTERM_DRAIN_MS = 5000;

interface Listen {
  role: string;
  addr: { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };
  text: string;
}

function log(line: string): void {
  process.stderr.write(`shed-agent: ${line}\n`);
}

function die(message: string): never {
  log(message);
  process.exit(2);
}

export function parseListen(value: string): Listen {
  const m = /^([a-z]+)=(unix|tcp):(.+)$/.exec(value);
  if (!m) die(`--listen takes ROLE=unix:PATH or ROLE=tcp:HOST:PORT, not ${JSON.stringify(value.slice(0, 100))}`);
  const [, role, kind, rest] = m as unknown as [string, string, string, string];
  if (kind === "unix") {
    if (!rest.startsWith("/")) die(`--listen ${role}: the socket path must be absolute`);
    return { role, addr: { kind: "unix", path: rest }, text: value };
  }
  const t = /^(.+):([0-9]{1,5})$/.exec(rest);
  const port = Number(t?.[2]);
  if (!t || port > 65535) die(`--listen ${role}: ${JSON.stringify(rest.slice(0, 100))} is not HOST:PORT`);
  return { role, addr: { kind: "tcp", host: (t[1] as string).replace(/^\[(.*)\]$/, "$1"), port }, text: value };
}

function parseArgs(argv: string[]): { listens: Listen[]; secretFile: string | undefined } {
  const listens: Listen[] = [];
  let secretFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = () => argv[++i] ?? die(`${a} needs a value`);
    if (a === "--listen") listens.push(parseListen(next()));
    else if (a.startsWith("--listen=")) listens.push(parseListen(a.slice(9)));
    else if (a === "--secret-file") secretFile = next();
    else if (a.startsWith("--secret-file=")) secretFile = a.slice(14);
    else die(`unknown argument ${JSON.stringify(a.slice(0, 100))}`);
  }
  if (listens.length === 0) die("no --listen address given");
  return { listens, secretFile };
}

/** The secret is the file's text, trimmed; its bytes are the HMAC key. Never echoed anywhere. */
function readSecret(file: string): Buffer {
  let text: string;
  try {
    const st = statSync(file);
    if ((st.mode & 0o077) !== 0) die(`the secret file ${file} is readable by others (mode must be 0600)`);
    text = readFileSync(file, "utf8").trim();
  } catch (err) {
    die(`cannot read the secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  if (text.length < 16) die(`the secret file ${file} holds too short a secret (at least 16 characters)`);
  return Buffer.from(text, "utf8");
}

function listen(l: Listen, state: AgentState, secret: Buffer | undefined): Promise<Server> {
  const server = createServer({ allowHalfOpen: false }, (socket) => {
    socket.setNoDelay(true);
    serveConnection(socket, { state, secret, log, where: l.role });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    if (l.addr.kind === "unix") {
      const path = l.addr.path;
      rmSync(path, { force: true });
      // The socket is made 0600 from the start: no window in which others could connect.
      const old = process.umask(0o177);
      server.listen(path, () => {
        process.umask(old);
        chmodSync(path, 0o600);
        resolve(server);
      });
    } else {
      server.listen(l.addr.port, l.addr.host, () => resolve(server));
    }
  });
}

async function main(): Promise<void> {
  const { listens, secretFile } = parseArgs(process.argv.slice(2));
  const secret = secretFile ? readSecret(secretFile) : undefined;
  const state = new AgentState();
  const servers: Server[] = [];
  for (const l of listens) {
    try {
      servers.push(await listen(l, state, secret));
    } catch (err) {
      die(`cannot listen on ${l.text}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const where = listens.map((l, i) => {
    const a = servers[i]?.address();
    return typeof a === "object" && a !== null ? `${l.role}=tcp:${a.address}:${a.port}` : l.text;
  });
  log(`listening on ${where.join(", ")}${secret ? " (secret required)" : ""}`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: draining for up to ${SIGTERM_DRAIN_MS} ms`);
    for (const s of servers) s.close();
    const left = await state.drain(SIGTERM_DRAIN_MS);
    log(`exiting (${left} still running)`);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  // A closed pipe to a host that went away is that connection's problem, not the agent's.
  process.on("SIGPIPE", () => {});
  process.on("uncaughtException", (err) => log(`internal error (kept running): ${err.stack ?? err.message}`));
}

void main();
