#!/bin/sh
# Runs once, on first start of the compose postgres volume.
# Creates the unprivileged login role the app serves with: it owns nothing and
# cannot bypass row-level security. Table privileges come from the migrations,
# which run as the database owner.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v app_password="${TRAINFLOW_APP_PASSWORD:?}" <<'SQL'
CREATE ROLE trainflow_app LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
GRANT CONNECT ON DATABASE :"DBNAME" TO trainflow_app;
SQL
