#!/usr/bin/env bash
# The console's half of `make test`, as sdk/js/test.sh does for the widget: node packages from
# the lockfile (npm ci), "the committed build is what the sources build", then the browser tests
# in Debian's Chromium against a server they start themselves (skipped without Chromium, unless
# REQUIRE_SERVICES=1). Screenshots: console/test-results/screenshots/.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null; then
  if [ "${REQUIRE_SERVICES:-}" = 1 ]; then echo "Node.js 20+ and npm are required for the console tests"; exit 1; fi
  echo "console tests skipped: Node.js and npm are not installed"
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
npm test

if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "installing Debian's chromium for the browser tests"
  $sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "could not install chromium"
fi
REFERRAL_PYTHON="${REFERRAL_PYTHON:-$(cd .. && pwd)/.venv/bin/python}" npm run --silent test:browser
