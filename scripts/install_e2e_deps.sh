#!/usr/bin/env bash
# System packages for the end-to-end tests (make test-e2e): Debian's Chromium and its WebDriver,
# which the browser test drives headless. Idempotent and quiet: does nothing when
# /usr/bin/chromium and /usr/bin/chromedriver are there already; needs root (or sudo) otherwise.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    exit 0
fi
bash "$(dirname "$0")/apt_install.sh" install_e2e_deps.sh chromium chromium-driver
echo "install_e2e_deps.sh: installed $(/usr/bin/chromium --version 2>/dev/null)"
