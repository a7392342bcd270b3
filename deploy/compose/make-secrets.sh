#!/bin/sh
# Creates ./secrets/ with random values for compose.example.yml (run once, from the repository
# root). The directory is git-ignored: never commit real secrets.
#
# Permissions: plain `docker compose` (not swarm) bind-mounts a file secret with the host file's
# owner and mode (the long syntax's uid/gid/mode apply to swarm only). The containers run as users
# the host does not know (the bootstrap as 65532, PostgreSQL as 70), so a 0600 file of yours is
# unreadable to them (EACCES, exit 2). The files are therefore readable by all (0644), and the
# directory is yours alone (0700): no other user of this host can reach them, while a container,
# which gets the file itself mounted, reads it whatever the directory's mode.
set -eu
umask 077
mkdir -p secrets
chmod 700 secrets
rand() { node -e "process.stdout.write(require('crypto').randomBytes(24).toString('base64url'))"; }
[ -f secrets/postgres_password ] || rand > secrets/postgres_password
[ -f secrets/tenant_db_password ] || rand > secrets/tenant_db_password
printf 'postgres://tenant_clienta:%s@postgres:5432/superfasttt?sslmode=disable' "$(cat secrets/tenant_db_password)" > secrets/database_url
[ -f secrets/admin_password ] || rand > secrets/admin_password
[ -f secrets/minio_root_user ] || printf 'superfasttt-root' > secrets/minio_root_user
[ -f secrets/minio_root_password ] || rand > secrets/minio_root_password
[ -f secrets/s3_access_key ] || printf 'tenant-clienta' > secrets/s3_access_key
[ -f secrets/s3_secret_key ] || rand > secrets/s3_secret_key
[ -f secrets/smtp_password ] || rand > secrets/smtp_password
chmod 644 secrets/*
echo "secrets written to ./secrets (a directory only you can open; admin password: secrets/admin_password)"
