#!/usr/bin/env bash
# The offline main job: install flareflow, then run the whole DAG on the bundled real data
# (ingest -> features -> train -> hourly backfill -> publish) with no network and no server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
export PREFECT_HOME="${PREFECT_HOME:-$PWD/out/.prefect}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false
# the demo's temporary Prefect server stops with the process: keep run logs local
export PREFECT_LOGGING_TO_API_ENABLED=false
.venv/bin/flareflow demo --out "${1:-out/demo}"
