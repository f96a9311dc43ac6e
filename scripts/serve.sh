#!/usr/bin/env bash
# Set up .venv (service install only: no torch) and start the service on the embedded SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh ""
# Fewer glibc malloc arenas: the vision pool's threads would otherwise keep ~15-30 MB resident.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec .venv/bin/authenticator serve "$@"
