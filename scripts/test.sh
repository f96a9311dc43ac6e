#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine, then run lint, types and every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh "dev,train"
# Services the tests talk to: PostgreSQL at 127.0.0.1:5432 (database test, trust auth).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
# Headless Chromium for the browser tests (Debian package; no browser download).
# Firefox ESR too: the pages are checked in both browsers.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/firefox-esr ]; then
  pkgs="chromium chromium-driver firefox-esr"
  (apt-get install -y -q $pkgs >/dev/null 2>&1 || \
   (apt-get update -q >/dev/null && apt-get install -y -q $pkgs >/dev/null)) || \
   echo "warning: could not install the browsers; browser tests will fail" >&2
fi
# A CJK font, so the Simplified Chinese pages render (and their screenshots show) characters.
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  (apt-get install -y -q fonts-wqy-microhei >/dev/null 2>&1 || \
   (apt-get update -q >/dev/null && apt-get install -y -q fonts-wqy-microhei >/dev/null)) || \
   echo "warning: could not install a CJK font; Chinese screenshots will show boxes" >&2
fi
# Go and Debian's golang.org/x/mod (sumdb/tlog, sumdb/note) for the tlog-tiles interop test
# (tests/ledger/test_tiles.py builds tests/go/tiles_interop in GOPATH mode: the module proxy is not needed).
if ! command -v go >/dev/null || [ ! -d /usr/share/gocode/src/golang.org/x/mod/sumdb/tlog ]; then
  pkgs="golang-go golang-golang-x-mod-dev"
  (apt-get install -y -q $pkgs >/dev/null 2>&1 || \
   (apt-get update -q >/dev/null && apt-get install -y -q $pkgs >/dev/null)) || \
   echo "warning: could not install Go; the tlog-tiles interop test will be skipped" >&2
fi
.venv/bin/ruff check .
.venv/bin/mypy authenticator api training
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
