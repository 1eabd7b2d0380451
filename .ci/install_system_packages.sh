#!/usr/bin/env bash
# Install the system packages the test suite needs: the MariaDB server binaries, and Chromium
# with its WebDriver for the dashboard's browser tests (tests/ui, driven by Selenium).
#
# The tests start their own throw-away MariaDB server per session
# (tests/support/mariadb.py), so we only need the binaries, not the packaged
# service. We therefore install `mariadb-server-core` (mariadbd,
# mariadb-install-db, resolveip, the bootstrap SQL) plus `mariadb-client-core`
# (only for `my_print_defaults`, which mariadb-install-db refuses to run
# without) instead of the `mariadb-server` metapackage: that one drags in perl,
# galera, rsync, socat, ... and ships an init script whose postinst tries to
# start the system service. The core packages have no service to start.
#
# libeatmydata1 (10 kB, libc only) is optional but worth it: the tests preload
# it into their throw-away server to turn fsync into a no-op, which makes
# bootstrapping a datadir ~4x faster on a busy disk.
#
# chromium + chromium-driver: Debian's headless-capable browser and the matching chromedriver;
# Selenium is pointed at both, so nothing is downloaded at test time.
#
# postgresql: the database of Airflow's real scheduler in tests/airflow (tests/support/postgres.py
# runs initdb and postgres itself, as the package's `postgres` user, on a free port; the cluster the
# package may create is never started, as there is no init system here).
#
# Idempotent: does nothing when the binaries are already installed.
set -euo pipefail

PACKAGES=(mariadb-server-core mariadb-client-core libeatmydata1 chromium chromium-driver postgresql)

have_server() {
    # my_print_defaults is checked too: without it mariadb-install-db fails.
    { command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; } &&
        command -v mariadb-install-db >/dev/null 2>&1 &&
        command -v my_print_defaults >/dev/null 2>&1
}

have_chromium() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

have_postgres() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && id postgres >/dev/null 2>&1
}

have_eatmydata() {
    compgen -G '/usr/lib/*/libeatmydata.so*' >/dev/null || compgen -G '/usr/lib/libeatmydata.so*' >/dev/null
}

if have_server && have_eatmydata && have_chromium && have_postgres; then
    echo "MariaDB server binaries, libeatmydata, chromium and postgresql already installed; nothing to do (${SECONDS}s)."
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    SUDO=(sudo)
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"

if ! have_server || ! have_eatmydata || ! have_chromium || ! have_postgres; then
    echo "error: installed ${PACKAGES[*]} but mariadbd/mariadb-install-db/my_print_defaults/libeatmydata/chromium/chromedriver/initdb are still missing" >&2
    exit 1
fi

echo "Installed ${PACKAGES[*]} in ${SECONDS}s."
