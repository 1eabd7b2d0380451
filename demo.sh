#!/usr/bin/env bash
# The README's main job: install mlpipe (pinned venv), run the taxi pipeline on the bundled data,
# serve the pushed model with `mlpipe serve` and print its prediction for one trip.
# A second run is fully cached and serves the model already pushed.
set -euo pipefail
cd "$(dirname "$0")"
VENV=$(bash .ci/setup_venv.sh)
export MLPIPE_TAXI_ROOT=${MLPIPE_TAXI_ROOT:-$PWD/runs/taxi}
"$VENV/bin/mlpipe" run pipelines/taxi.py
"$VENV/bin/python" examples/serve_and_predict.py \
    --model-base-path "$MLPIPE_TAXI_ROOT/serving/taxi" --metadata "$MLPIPE_TAXI_ROOT/metadata.sqlite"
