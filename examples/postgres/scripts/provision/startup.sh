#!/bin/bash
# Runs on every start (and after the install on create).
set -euo pipefail

if pg_isready -q 2>/dev/null; then
  echo "PostgreSQL is ready"
  exit 0
fi

# Clean stale PostgreSQL state from a prior stop that did not go through the
# shutdown hook (only when no server answers: never pull a live server's socket)
sudo rm -rf /var/run/postgresql
sudo mkdir -p /var/run/postgresql
sudo chown postgres:postgres /var/run/postgresql 2>/dev/null || true
sudo rm -f /var/lib/postgresql/15/main/postmaster.pid 2>/dev/null || true

echo "Starting PostgreSQL..."
sudo pg_ctlcluster 15 main start
for _ in {1..10}; do
  pg_isready -q && break
  sleep 1
done
pg_isready
echo "PostgreSQL is ready"
