#!/bin/sh
# Creates ./secrets/ with random values for compose.example.yml (run once, from the repository
# root). The directory is git-ignored: never commit real secrets.
set -eu
umask 077
mkdir -p secrets
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
echo "secrets written to ./secrets (admin password: secrets/admin_password)"
