#!/bin/bash
# Runs once, when the shed is created (the state file /var/lib/shed/install.done records it).
set -euo pipefail

# Install PostgreSQL (Debian bookworm ships 15)
sudo apt-get update
sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15

# The package creates cluster "15 main"; make sure it runs for the setup below
if ! pg_isready -q 2>/dev/null; then
  sudo pg_ctlcluster 15 main start
fi
for _ in {1..30}; do
  pg_isready -q && break
  sleep 1
done

# Role shed (the shed's user, so psql needs no user name) and database myapp
if [ "$(sudo -u postgres psql -tAc "select 1 from pg_roles where rolname = 'shed'")" != 1 ]; then
  sudo -u postgres createuser --superuser shed
fi
if [ "$(sudo -u postgres psql -tAc "select 1 from pg_database where datname = 'myapp'")" != 1 ]; then
  sudo -u postgres createdb --owner shed myapp
fi

# Local TCP connections are trusted, so psql "$DATABASE_URL" (postgresql://localhost/myapp) needs no password
hba=/etc/postgresql/15/main/pg_hba.conf
sudo sed -ri 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+$/\1trust/' "$hba"
sudo pg_ctlcluster 15 main reload

echo "PostgreSQL installed"
