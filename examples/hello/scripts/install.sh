#!/bin/bash
# Runs once, on create: installs a small tool into ~/.local/bin the way many installers do,
# by adding it to PATH in ~/.bashrc. Shed captures that PATH for later commands.
set -euo pipefail
mkdir -p "$HOME/.hello/bin"
cat >"$HOME/.hello/bin/hello" <<'SH'
#!/bin/sh
echo "$GREETING (from $SHED_NAME, in $PWD)"
SH
chmod +x "$HOME/.hello/bin/hello"
echo 'export PATH="$HOME/.hello/bin:$PATH"' >>"$HOME/.bashrc"
echo "hello tool installed"
