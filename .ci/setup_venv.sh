#!/usr/bin/env bash
# Creates (or updates) the virtualenv from requirements.lock and installs mlpipe into it, editable.
# Used by .ci/run (tests) and demo.sh (main job). Prints the venv path.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MLPIPE_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    python3.11 -m venv "$VENV" >&2
fi
# uv installs the ~3 GB pinned stack in ~25 s where pip takes minutes; uv itself is pinned.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check uv==0.13.9 >&2
# --compile-bytecode: these machines set PYTHONDONTWRITEBYTECODE=1, and every process that runs a
# node (entry point, Airflow/KFP tasks) would otherwise recompile its imports (~0.5 s CPU each).
"$VENV/bin/python" -m uv pip install -q --compile-bytecode -p "$VENV/bin/python" -r requirements.lock >&2
"$VENV/bin/python" -m uv pip install -q --compile-bytecode -p "$VENV/bin/python" --no-deps -e . >&2
echo "$VENV"
