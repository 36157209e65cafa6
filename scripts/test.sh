#!/usr/bin/env bash
# The whole test suite, from nothing: set up both Airflow environments, then lint, type-check, and run
# pytest on Airflow 3.3.2 (including the real-Airflow and full-stack tests) and on Airflow 2.11.2.
# Extra arguments go to both pytest runs (e.g. scripts/test.sh -k hook).
# `scripts/test.sh --fast`: the inner loop, lint, types and the unit tier (no real Airflow, no service) on
# Airflow 3.3.2 only, stopping at the first failure.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"

fast=0
if [ "${1:-}" = "--fast" ]; then
    fast=1
    shift
fi

[ "$fast" = 1 ] || ensure_system_packages
af3="$(ensure_venv af3 "$AIRFLOW3_VERSION" "$AF3_GROUPS")"
[ "$fast" = 1 ] || af2="$(ensure_venv af2 "$AIRFLOW2_VERSION" test)"

step() { printf '\n== %s\n' "$*"; }

step "ruff check"
"$af3/ruff" check .
step "ruff format --check"
"$af3/ruff" format --check .
step "mypy"
"$af3/mypy"

run_pytest() {
    local bin="$1" label="$2"
    shift 2
    local home
    home="$(mktemp -d "${TMPDIR:-/tmp}/wavy-airflow-home.XXXXXX")"
    step "pytest on $label"
    # A private AIRFLOW_HOME per run: the suite never touches ~/airflow or another run's database.
    local rc=0
    AIRFLOW_HOME="$home" PATH="$bin:$PATH" "$bin/python" -m pytest -p no:cacheprovider "$@" || rc=$?
    rm -rf "$home"
    return "$rc"
}

if [ "$fast" = 1 ]; then
    # Four processes on two cores: the unit tier spends most of its time waiting on loopback sockets.
    run_pytest "$af3" "Airflow $AIRFLOW3_VERSION (fast tier)" -m "not e2e and not slow" -n 4 -x "$@"
    exit 0
fi

run_pytest "$af3" "Airflow $AIRFLOW3_VERSION" "$@"
run_pytest "$af2" "Airflow $AIRFLOW2_VERSION" "$@"

# -- Version matrix: the smoke set (marker "smoke": provider discovery, the connection form the API server
# serves, every example DAG through `airflow dags test`, a trigger round trip) on the other Airflow 3 minors.
# Its venvs hold pytest only, so only the modules with smoke tests are collected; exit code 5 is "nothing
# selected", when the arguments deselect every smoke test.
for spec in "${AIRFLOW_SMOKE_VERSIONS[@]}"; do
    read -r version packages <<<"$spec"
    # shellcheck disable=SC2086 # packages: a space-separated list, possibly empty
    bin="$(ensure_venv "af$version" "$version" smoke $packages)"
    run_pytest "$bin" "Airflow $version (smoke set)" -m smoke \
        tests/test_matrix_smoke.py tests/test_example_dags.py "$@" || [ $? -eq 5 ]
done
