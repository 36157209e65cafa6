#!/usr/bin/env bash
# The first thing to run: sets up the Airflow 3.3.2 environment if needed (about a minute, once), then runs
# the daily example DAG in a real Airflow against the local Wavy sandbox and shows the CSV it wrote.
# Everything it creates stays in .demo/ (git-ignored). Arguments go to the demo (scripts/demo.sh --help).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
cd "$ROOT"

bin="$(ensure_venv af3 "$AIRFLOW3_VERSION" "$AF3_GROUPS")"
exec "$bin/python" -m airflow_provider_wavy.demo "$@"
