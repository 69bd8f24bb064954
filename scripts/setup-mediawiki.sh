#!/usr/bin/env bash
# Makes a real MediaWiki (Debian bookworm's 1.39) available to the integration tests without a web
# server package: PHP's CLI (its built-in server serves the wiki) plus the unpacked mediawiki debs.
# Idempotent: each step is skipped when its result is already there. Prints the docroot on stdout;
# everything else goes to stderr so that callers can capture the path.
#   WMS_CACHE_DIR   where the unpacked wiki lives (default ~/.cache/wiki-matrix-sso)
set -euo pipefail

cache_dir="${WMS_CACHE_DIR:-$HOME/.cache/wiki-matrix-sso}/mediawiki"
docroot="$cache_dir/usr/share/mediawiki"
php_packages=(php-cli php-sqlite3 php-intl php-mbstring php-xml)
# The PHP modules those packages bring; what install.php and the API need.
php_modules=(pdo_sqlite intl mbstring dom xml)

log() { printf 'setup-mediawiki: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Other jobs on the machine may hold apt's locks for a while; wait for them rather than fail.
# dpkg's chatter is shown only when something went wrong.
apt_get() {
  local out status=0
  out="$(as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -qq "$@" 2>&1)" || status=$?
  if [ "$status" -ne 0 ]; then printf '%s\n' "$out" >&2; fi
  return "$status"
}

php_ready() {
  command -v php >/dev/null 2>&1 || return 1
  local loaded module
  loaded="$(php -m 2>/dev/null | tr '[:upper:]' '[:lower:]')"
  for module in "${php_modules[@]}"; do
    grep -qx "$module" <<<"$loaded" || return 1
  done
}

# Debian's package lists may be missing or stale on a fresh machine; refresh them only then.
apt_update_once() {
  if [ -z "${apt_updated:-}" ]; then
    log "apt-get update"
    apt_get update
    apt_updated=1
  fi
}

install_php() {
  if php_ready; then return; fi
  log "installing ${php_packages[*]}"
  if ! apt_get install -y --no-install-recommends "${php_packages[@]}"; then
    apt_update_once
    apt_get install -y --no-install-recommends "${php_packages[@]}"
  fi
  php_ready || { log "PHP is installed but lacks one of: ${php_modules[*]}"; exit 1; }
}

# Unpacked rather than installed: installing `mediawiki` pulls in apache2 (which wants port 80)
# and a system-wide LocalSettings.php; the tests want a read-only tree and settings of their own.
unpack_mediawiki() {
  if [ -f "$docroot/api.php" ] && [ -f "$docroot/includes/api/ApiMain.php" ]; then return; fi
  local work
  work="$(mktemp -d)"
  # apt downloads as the unprivileged _apt user, which must be able to write here.
  chmod 755 "$work"
  trap 'rm -rf "$work"' RETURN
  log "downloading mediawiki and mediawiki-classes"
  if ! (cd "$work" && apt_get download mediawiki mediawiki-classes); then
    apt_update_once
    (cd "$work" && apt_get download mediawiki mediawiki-classes)
  fi
  rm -rf "$cache_dir.partial"
  mkdir -p "$cache_dir.partial"
  local deb
  for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$cache_dir.partial"
  done
  # Swap in whole so that an interrupted run never leaves a half-unpacked tree that looks done.
  rm -rf "$cache_dir"
  mv "$cache_dir.partial" "$cache_dir"
  log "unpacked into $cache_dir"
}

install_php
unpack_mediawiki
printf '%s\n' "$docroot"
