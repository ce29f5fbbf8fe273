#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NUM_PROCESSES [train.py options]
# One node, NUM_PROCESSES workers through torchrun: GPUs with NCCL, or CPU
# processes with gloo when no GPU is present. Several nodes: on each, set
# NNODES, NODE_RANK (0 .. NNODES-1), MASTER_ADDR (the address of node 0)
# and PORT, and give the same CONFIG and NUM_PROCESSES (per node), e.g.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 PORT=29500 \
#     tools/dist_train.sh CONFIG 8      (and NODE_RANK=1 on the other)
# An error in any process is shown once; torchrun's report goes to a log
# file (LAUNCH_LOG=path to choose it). Exit status: the failed process's;
# 75 when a stop signal (SIGTERM, SIGUSR1) ended the run after saving a
# checkpoint (resume with --resume). Runs the project's .venv python when it
# exists (else python from PATH, or $PYTHON).
set -euo pipefail
source "$(dirname "$0")/python_env.sh"
usage_unless 2 "$@"
count_or_usage NUM_PROCESSES "$2"
require_torch
torchrun_python "$2" "$(dirname "$0")/train.py" "$1" --launcher pytorch \
    "${@:3}"
