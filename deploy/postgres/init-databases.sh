#!/usr/bin/env bash
# Run by the postgres image on the first start of an empty data volume: one role and one database
# for Synapse and one for wiki-matrix-sso, with the passwords from the compose secrets. The cluster
# was created with the C locale (POSTGRES_INITDB_ARGS), which Synapse requires of its database.
set -euo pipefail
# SECRETS_DIR is for trying the script outside the image; there the secrets are in /run/secrets.
secrets=${SECRETS_DIR:-/run/secrets}
synapse_password=$(< "$secrets/synapse_db_password")
wms_password=$(< "$secrets/wms_db_password")
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v synapse_password="$synapse_password" -v wms_password="$wms_password" <<'SQL'
CREATE ROLE synapse LOGIN PASSWORD :'synapse_password';
CREATE DATABASE synapse OWNER synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
CREATE ROLE wiki_matrix_sso LOGIN PASSWORD :'wms_password';
CREATE DATABASE wiki_matrix_sso OWNER wiki_matrix_sso;
SQL
