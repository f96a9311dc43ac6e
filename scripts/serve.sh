#!/usr/bin/env bash
# Set up .venv (service install only: no torch) and start the service on the embedded SQLite default.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh ""
exec .venv/bin/authenticator serve "$@"
