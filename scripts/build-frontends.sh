#!/usr/bin/env bash
# Build each front end that exists (web/ dashboard -> owp_bot/web/static, obsidian-plugin/ -> main.js).
# npm ci runs only when package-lock.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in web obsidian-plugin; do
  [ -f "$dir/package.json" ] || continue
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  (cd "$dir" && npm run --silent build)
done
