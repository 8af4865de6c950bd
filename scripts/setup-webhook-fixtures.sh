#!/usr/bin/env bash
# Real GitHub webhook payloads for the webhook tests: the published @octokit/webhooks-examples package,
# pinned in tests/webhooks/fixtures/package-lock.json (installed once; a re-run is a no-op).
set -euo pipefail
cd "$(dirname "$0")/../tests/webhooks/fixtures"
if [ -f node_modules/@octokit/webhooks-examples/api.github.com/index.json ] \
   && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
