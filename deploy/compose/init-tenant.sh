#!/bin/sh
# Runs once, as the PostgreSQL superuser, when the postgres container initialises its data directory
# (/docker-entrypoint-initdb.d). It plays the deployment machine: it creates the tenant's role and
# schema with the least privilege the bootstrap needs, as `superfasttt-bootstrap provision` would.
set -eu
TENANT_PASSWORD="$(cat /run/secrets/tenant_db_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=tenant_password="$TENANT_PASSWORD" <<'SQL'
-- Nobody connects or creates anything by default: each tenant gets exactly what it needs.
REVOKE ALL ON DATABASE superfasttt FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
-- The tenant's login role (scram-sha-256 is the default password encryption from PostgreSQL 14).
CREATE ROLE tenant_clienta LOGIN PASSWORD :'tenant_password' CONNECTION LIMIT 20;
GRANT CONNECT ON DATABASE superfasttt TO tenant_clienta;
-- The schema belongs to the deployment role; the tenant may use it and create its tables in it.
CREATE SCHEMA tenant_clienta;
GRANT USAGE, CREATE ON SCHEMA tenant_clienta TO tenant_clienta;
ALTER ROLE tenant_clienta SET search_path = tenant_clienta;
SQL
