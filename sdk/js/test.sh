#!/usr/bin/env bash
# The widget's half of `make test`: node packages from the lockfile (npm ci), the type check,
# the unit tests (including the committed-bundle check and the 12 KB budget), then the browser
# tests in Debian's Chromium against a backend they start themselves. Chromium is installed
# with apt-get when missing; if that is impossible the browser tests are skipped, unless
# REQUIRE_SERVICES=1 (.ci/run), which makes it a failure.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v npm >/dev/null; then
  if [ "${REQUIRE_SERVICES:-}" = 1 ]; then echo "Node.js 20+ and npm are required for the widget tests"; exit 1; fi
  echo "widget tests skipped: Node.js and npm are not installed"
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error
npm run --silent check
npm test

if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo -n"
  echo "installing Debian's chromium for the browser tests"
  $sudo apt-get install -y -qq chromium >/dev/null 2>&1 \
    || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq chromium >/dev/null 2>&1; } \
    || echo "could not install chromium"
fi
REFERRAL_PYTHON="${REFERRAL_PYTHON:-$(cd ../.. && pwd)/.venv/bin/python}" npm run test:browser
