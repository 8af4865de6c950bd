#!/usr/bin/env bash
# The front ends' own tests (vitest). They start real OWP servers from .venv when they need one.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in web obsidian-plugin; do
  [ -f "$dir/package.json" ] || continue
  grep -q '"test"' "$dir/package.json" || continue
  (cd "$dir" && npm test --silent)
done
