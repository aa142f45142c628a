#!/usr/bin/env bash
# System packages for the end-to-end tests (make test-e2e): Debian's Chromium and its WebDriver,
# which the browser test drives headless. Idempotent and quiet: does nothing when
# /usr/bin/chromium and /usr/bin/chromedriver are there already; needs root (or sudo) otherwise.
set -euo pipefail

if [[ -x /usr/bin/chromium && -x /usr/bin/chromedriver ]]; then
    exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "install_e2e_deps.sh: chromium and chromium-driver are missing and this is not root;" \
            "run: apt-get install -y chromium chromium-driver" >&2
        exit 1
    fi
    SUDO=(sudo)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "install_e2e_deps.sh: installing chromium and chromium-driver failed" >&2
    exit 1
fi
echo "install_e2e_deps.sh: installed $(/usr/bin/chromium --version 2>/dev/null)"
