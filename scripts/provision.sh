#!/usr/bin/env bash
# Outside programs some tests drive: PostgreSQL (the shared tuning study test) and Debian's chromium (the playground
# test in a real browser). Idempotent: installs only what is missing, and does nothing where it cannot (not root, no
# apt-get); those tests then skip, saying why. .ci/run and `make test` call it before pytest; tests never install.
set -uo pipefail

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium fonts-dejavu-core)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || need+=(postgresql)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "provision: cannot install ${need[*]} here (not root, or no apt-get); the tests that need them will skip"
    else
        export DEBIAN_FRONTEND=noninteractive
        echo "provision: installing ${need[*]}"
        if ! apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1; then
            apt-get update -q >/dev/null 2>&1
            apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
                || echo "provision: apt-get install ${need[*]} failed; the tests that need them will skip"
        fi
    fi
fi

# PostgreSQL refuses to run as root: the test runs its throwaway server as the package's `postgres` user
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1 && command -v useradd >/dev/null 2>&1; then
    useradd --system --no-create-home postgres && echo "provision: created system user postgres"
fi
exit 0
