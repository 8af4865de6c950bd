#!/usr/bin/env bash
# Make this checkout runnable on a fresh machine: the Python venv with the package and its test tools.
# Idempotent and quick when nothing changed (a stamp records the pyproject it installed).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.stamp-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -e '.[test]'
  rm -f .venv/.stamp-* && touch "$stamp"
fi
