#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCESSES [test.py options]
# One node, NUM_PROCESSES workers through torchrun: GPUs with NCCL, or CPU
# processes with gloo when no GPU is present. Several nodes: set NNODES,
# NODE_RANK, MASTER_ADDR (and PORT) on every node, as for dist_train.sh.
# An error in any process is shown once; torchrun's report goes to a log
# file (LAUNCH_LOG=path to choose it). Runs the project's .venv python when
# it exists (else python from PATH, or $PYTHON).
set -euo pipefail
source "$(dirname "$0")/python_env.sh"
usage_unless 3 "$@"
count_or_usage NUM_PROCESSES "$3"
require_torch
torchrun_python "$3" "$(dirname "$0")/test.py" "$1" "$2" --launcher pytorch \
    "${@:4}"
