#!/usr/bin/env bash
# Makes the secrets compose.yaml mounts, as files in ./secrets (or DIR). Safe to re-run: a file that
# exists is never changed, so rotating a secret is deleting its file (and restarting what reads it).
#
#   ./secrets.sh [DIR]                   every generated secret; the wiki's OAuth consumer secret is
#                                        taken from $WIKI_CLIENT_SECRET, or left for you to write
#   ./secrets.sh bot-token [SYNAPSE_URL] once Synapse runs: registers the service's bot (a Synapse
#                                        admin) and keeps its access token (default http://127.0.0.1:8008)
#
# The folder is 0700; the files are 0644 because each container reads them as its own user
# (postgres, Synapse's 991, the image's node), not as yours.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
BOT_LOCALPART="${BOT_LOCALPART:-wiki-matrix-sso}"

random() { openssl rand -hex 32; }

# write NAME CONTENT: only when the file is missing.
write() {
  local path="$dir/$1"
  if [[ -e "$path" ]]; then return 0; fi
  (umask 022; printf '%s\n' "$2" > "$path")
  echo "secrets: wrote $path" >&2
}

generate() {
  dir="${1:-$here/secrets}"
  mkdir -p "$dir"
  chmod 0700 "$dir"
  write postgres_password "$(random)"
  # A database password goes into two secrets each: the role's password for PostgreSQL's first start,
  # and the way its client reads it. Read the first back, so a re-run never makes them disagree.
  write synapse_db_password "$(random)"
  write wms_db_password "$(random)"
  local synapse_pw wms_pw
  synapse_pw=$(< "$dir/synapse_db_password")
  wms_pw=$(< "$dir/wms_db_password")
  write synapse_database.yaml "# Synapse's database section (a second --config-path): it holds the password.
database:
  name: psycopg2
  args:
    user: synapse
    password: \"$synapse_pw\"
    dbname: synapse
    host: postgres
    cp_min: 5
    cp_max: 10"
  write wms_database_url "postgres://wiki_matrix_sso:$wms_pw@postgres:5432/wiki_matrix_sso"
  write synapse_registration_secret "$(random)"
  write synapse_macaroon_secret "$(random)"
  write synapse_form_secret "$(random)"
  # Shared by Synapse (client_secret_path) and the service (oidc.clients[].client_secret_file).
  write oidc_client_secret "$(random)"
  write wms_cookie_keys "$(random)"
  write wms_key_encryption_secret "$(random)"
  write wms_admin_token "$(random)"
  if [[ ! -e "$dir/wiki_client_secret" ]]; then
    if [[ -n "${WIKI_CLIENT_SECRET:-}" ]]; then
      write wiki_client_secret "$WIKI_CLIENT_SECRET"
    else
      (umask 022; : > "$dir/wiki_client_secret")
      echo "secrets: write the wiki's OAuth 2 consumer secret into $dir/wiki_client_secret (Special:OAuthConsumerRegistration; see the README)" >&2
    fi
  fi
  # Empty until `./secrets.sh bot-token`: the service refuses to start until then, saying so.
  [[ -e "$dir/matrix_bot_token" ]] || (umask 022; : > "$dir/matrix_bot_token")
}

json_field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p"; }

bot_token() {
  local synapse="${1:-http://127.0.0.1:8008}"
  dir="${SECRETS_DIR:-$here/secrets}"
  if [[ -s "$dir/matrix_bot_token" ]]; then
    echo "secrets: $dir/matrix_bot_token already holds a token" >&2
    return 0
  fi
  local secret nonce password mac answer token
  secret=$(< "$dir/synapse_registration_secret")
  password=$(random)
  # Synapse's shared-secret registration: an HMAC-SHA1 of nonce, user, password and "admin", NUL-separated.
  nonce=$(curl -fsS "$synapse/_synapse/admin/v1/register" | json_field nonce)
  mac=$(printf '%s\0%s\0%s\0%s' "$nonce" "$BOT_LOCALPART" "$password" admin | openssl dgst -sha1 -hmac "$secret" | sed 's/^.*= *//')
  answer=$(curl -sS -X POST -H 'content-type: application/json' \
    -d "{\"nonce\":\"$nonce\",\"username\":\"$BOT_LOCALPART\",\"password\":\"$password\",\"admin\":true,\"mac\":\"$mac\"}" \
    "$synapse/_synapse/admin/v1/register")
  token=$(printf '%s' "$answer" | json_field access_token)
  if [[ -z "$token" ]]; then
    echo "secrets: Synapse did not register @$BOT_LOCALPART: $answer" >&2
    return 1
  fi
  (umask 022; printf '%s\n' "$token" > "$dir/matrix_bot_token")
  echo "secrets: registered @$BOT_LOCALPART (a Synapse admin); its token is in $dir/matrix_bot_token" >&2
}

case "${1:-}" in
  bot-token) shift; bot_token "$@" ;;
  -h|--help) sed -n '2,12p' "$0" ;;
  *) generate "$@" ;;
esac
