#!/usr/bin/env bash
# Installs a pinned Synapse from PyPI into a cached venv, for the e2e tests
# (test/support/synapse.ts finds it in the same place). Idempotent: a venv that already holds
# the pinned version is left alone. Prints the venv path on stdout as its last line.
set -euo pipefail

SYNAPSE_VERSION="1.163.2"
# The oidc extra brings authlib: without it Synapse refuses any `oidc_providers` config.
SPEC="matrix-synapse[oidc]==$SYNAPSE_VERSION"
cache_dir="${WMS_CACHE_DIR:-$HOME/.cache/wiki-matrix-sso}"
venv="$cache_dir/synapse-venv"
python="${PYTHON:-python3}"

marker="$venv/.installed-spec"

installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("matrix-synapse"))' 2>/dev/null || true
}

if [[ -x "$venv/bin/python" && "$(cat "$marker" 2>/dev/null)" == "$SPEC" && "$(installed_version)" == "$SYNAPSE_VERSION" ]]; then
  echo "setup-synapse: $SPEC already installed" >&2
  echo "$venv"
  exit 0
fi

mkdir -p "$cache_dir"
if [[ ! -x "$venv/bin/python" ]]; then
  echo "setup-synapse: creating venv $venv with $("$python" --version 2>&1)" >&2
  "$python" -m venv "$venv"
fi

start=$SECONDS
echo "setup-synapse: installing $SPEC" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$SPEC" >&2
# Smoke-check the imports: a broken install should fail here, not halfway through a test run.
"$venv/bin/python" -W ignore -c 'import synapse.app.homeserver, synapse.handlers.oidc' >&2
echo "$SPEC" > "$marker"
echo "setup-synapse: installed matrix-synapse $(installed_version) in $((SECONDS - start)) s" >&2
echo "$venv"
