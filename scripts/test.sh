#!/usr/bin/env bash
# Everything the tests need, then every test: Python (unit, store, API, webhooks, browser) and front ends.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-browser.sh
scripts/setup-postgres.sh
[ -x scripts/build-frontends.sh ] && scripts/build-frontends.sh
.venv/bin/owp openapi --check
.venv/bin/ruff check owp_bot tests bench
scripts/setup-webhook-fixtures.sh
.venv/bin/python -m pytest "$@"
[ -x scripts/test-frontends.sh ] && scripts/test-frontends.sh
echo "all tests passed"
