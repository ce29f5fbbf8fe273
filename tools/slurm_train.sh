#!/usr/bin/env bash
# Usage: [GPUS=16 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py options]
# One task per GPU through srun; each reads its rank and the world size from
# Slurm. Runs the project's .venv python when it exists (else python from
# PATH, or $PYTHON); the nodes must see the same path.
# Resuming: when WORK_DIR has a checkpoint (a last_checkpoint file), the run
# goes on from it (--resume), unless the options name --resume themselves.
# Preemption: every task stops on SIGTERM or SIGUSR1 after the iteration in
# progress, with a checkpoint of it, and srun ends with status 75. Inside a
# batch job this script then requeues the job (scontrol requeue; REQUEUE=0
# leaves it), whose next start resumes from that checkpoint. Submit with
#   sbatch --requeue --signal=USR1@180 job.sh   (job.sh runs this script)
# so that Slurm warns the tasks 180 s before the time limit.
# An error in any task is shown once; srun's per-task lines go to a log file
# (LAUNCH_LOG=path to choose it). Exit status: srun's.
set -euo pipefail
source "$(dirname "$0")/python_env.sh"
usage_unless 4 "$@"
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
count_or_usage GPUS "$GPUS"
count_or_usage GPUS_PER_NODE "$GPUS_PER_NODE"
require_torch

RESUME=()
if [ -f "$WORK_DIR/last_checkpoint" ] && [[ " ${*:5} " != *" --resume"* ]]
then
    RESUME=(--resume)
    echo "slurm_train.sh: resuming from $(cat "$WORK_DIR/last_checkpoint")"
fi

# A stop signal to this script (Slurm's time limit signals every process of
# the job) must not end it before srun's status is known.
trap : TERM USR1
status=0
# shellcheck disable=SC2086  # SRUN_ARGS: several options
PYTHONPATH="$_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" "$_ROOT/tools/launch_workers.py" slurm_train.sh exec \
    srun --partition="${PARTITION}" \
    --job-name="${JOB_NAME}" \
    --gres=gpu:"${GPUS_PER_NODE}" \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$_ROOT/tools/train.py" "${CONFIG}" \
    --work-dir="${WORK_DIR}" --launcher="slurm" \
    ${RESUME[@]+"${RESUME[@]}"} "${@:5}" || status=$?

if [ "$status" -eq 75 ] && [ -n "${SLURM_JOB_ID:-}" ] \
    && [ "${REQUEUE:-1}" != 0 ]; then
    echo "slurm_train.sh: stopped with a checkpoint; requeueing job" \
        "$SLURM_JOB_ID, whose next start resumes from it."
    if ! scontrol requeue "$SLURM_JOB_ID"; then
        echo "slurm_train.sh: error: scontrol could not requeue job" \
            "$SLURM_JOB_ID (submitted without --requeue?); submit the job" \
            "again and it resumes from $WORK_DIR." >&2
    fi
fi
exit "$status"
