#!/usr/bin/env bash
# System packages for the distributed end-to-end tests (make test-e2e-celery): Debian's postgresql
# (the metadata database and Celery's result backend: the tests run a throwaway cluster of their
# own) and redis-server (the Celery broker, also started by the tests). Idempotent and quiet: does
# nothing when a PostgreSQL server under /usr/lib/postgresql and redis-server are there already;
# needs root (or sudo) otherwise. The Python side, the `celery` extra, is the Makefile's.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null && command -v redis-server >/dev/null; then
    exit 0
fi
bash "$(dirname "$0")/apt_install.sh" install_e2e_celery_deps.sh postgresql redis-server
echo "install_e2e_celery_deps.sh: installed $(redis-server --version | cut -d' ' -f1-3)," \
    "PostgreSQL $(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -n | tail -1)"
