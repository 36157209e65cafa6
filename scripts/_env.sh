# shellcheck shell=bash
# Shared set-up for the README's commands: one virtualenv per tested Airflow version, built from the
# constraints files kept in constraints/. Idempotent: a venv is rebuilt only when its inputs change.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
# uv resolves Airflow's large dependency tree in seconds where pip backtracks for many minutes; it
# reads the system CA bundle through SSL_CERT_FILE when the machine has one.
if [ -z "${SSL_CERT_FILE:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
fi
AIRFLOW3_VERSION="3.3.2"
AIRFLOW2_VERSION="2.11.2"
# The Airflow 3.3.2 venv's dependency groups: the same for the demo and the tests, so neither rebuilds it.
AF3_GROUPS="test,lint,distributed"
# The version matrix: the latest patch of each other Airflow 3 minor runs the smoke set (scripts/test.sh),
# as "VERSION [PACKAGE...]": 3.0 builds a provider's connection form only with the FAB provider installed.
AIRFLOW_SMOKE_VERSIONS=("3.0.6 apache-airflow-providers-fab" "3.1.8" "3.2.2")

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3.12 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(0 if (3, 11) <= sys.version_info[:2] <= (3, 12) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    echo "error: Python 3.11 or 3.12 is needed (set PYTHON=/path/to/python3.11)." >&2
    return 1
}

# set_group_args GROUPS: sets the array GROUP_ARGS to the uv arguments that install the comma-separated
# dependency groups (PEP 735) of pyproject.toml, e.g. "test,lint"
set_group_args() {
    local group
    local -a groups
    IFS=, read -r -a groups <<<"$1"
    GROUP_ARGS=()
    for group in "${groups[@]}"; do
        GROUP_ARGS+=(--group "$ROOT/pyproject.toml:$group")
    done
}

# ensure_venv NAME AIRFLOW_VERSION GROUPS [PACKAGE...] -> prints the venv's bin directory
# GROUPS: comma-separated dependency groups (test, lint, smoke) installed beside the editable project;
# PACKAGEs: more requirements (pinned by the constraints file too).
ensure_venv() {
    local name="$1" airflow_version="$2" groups="$3"
    shift 3
    local packages=("$@")
    local venv="$ROOT/.venv/$name"
    local constraints="$ROOT/constraints/airflow-$airflow_version.txt"
    local stamp_value
    stamp_value="$(cat "$constraints" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)-$groups-${packages[*]}"
    if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$stamp_value" ]; then
        echo "$venv/bin"
        return 0
    fi
    local python log
    python="$(find_python)"
    set_group_args "$groups"
    log="$ROOT/.venv/$name-install.log"
    mkdir -p "$ROOT/.venv"
    echo "Setting up $name (Airflow $airflow_version) in .venv/$name: about a minute, log in .venv/$name-install.log" >&2
    rm -rf "$venv"
    if ! { "$python" -m venv "$venv" &&
        "$venv/bin/python" -m pip install --quiet "uv==$UV_VERSION" &&
        "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --constraint "$constraints" \
            "apache-airflow==$airflow_version" "${packages[@]}" -e "$ROOT" "${GROUP_ARGS[@]}"; } >"$log" 2>&1; then
        echo "error: installing $name failed; the last lines of $log:" >&2
        grep -v '^WARNING: Location' "$log" | tail -n 20 >&2
        return 1
    fi
    echo "$stamp_value" >"$venv/.stamp"
    echo "$venv/bin"
}

# ensure_system_packages: the distributed test's servers (PostgreSQL, Redis) and the browser test's Chromium
# (tests/e2e/test_ui_browser.py, driven by Playwright) come from Debian's packages. Installed when missing
# and this is root on a Debian-like system; otherwise the tests say what is missing (a skip, or a failure
# under CI=true).
ensure_system_packages() {
    local -a missing=()
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ "${#missing[@]}" -gt 0 ] || return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "warning: ${missing[*]} missing and not installable here (needs root and apt-get): the distributed and browser tests cannot run." >&2
        return 0
    fi
    mkdir -p "$ROOT/.venv"
    echo "Installing ${missing[*]} (Debian packages) for the distributed and browser tests" >&2
    if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        >"$ROOT/.venv/apt-install.log" 2>&1; then
        echo "error: installing ${missing[*]} failed; the last lines of .venv/apt-install.log:" >&2
        tail -n 20 "$ROOT/.venv/apt-install.log" >&2
        return 1
    fi
}
