#!/usr/bin/env bash
# apt_install.sh CALLER PACKAGE...: install Debian packages quietly (apt-get update, then install
# without recommends), as root or through sudo; print apt's output only when it fails. Used by the
# install_e2e*_deps.sh scripts once they have found something missing.
set -euo pipefail

caller=$1
shift
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "$caller: $* missing and this is not root; run: apt-get install -y $*" >&2
        exit 1
    fi
    SUDO=(sudo)
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! { "${SUDO[@]}" apt-get update -qq && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$@"; } \
    >"$log" 2>&1; then
    cat "$log" >&2
    echo "$caller: installing $* failed" >&2
    exit 1
fi
