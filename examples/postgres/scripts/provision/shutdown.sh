#!/bin/bash
# Runs before the shed stops (shed stop, shed delete): stop PostgreSQL cleanly.
set -euo pipefail

if pg_isready -q 2>/dev/null; then
  sudo pg_ctlcluster 15 main stop
fi
echo "PostgreSQL stopped"
