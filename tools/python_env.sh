# Sourced by the launchers. Sets PYTHON: $PYTHON if given, else the
# project's .venv (what `make install` creates) when it exists, else
# `python` from PATH (require_torch stops with one line when that python
# has no torch).
_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$_ROOT/.venv/bin/python" ]; then
        PYTHON="$_ROOT/.venv/bin/python"
    else
        PYTHON=python
    fi
fi

require_torch() {
    if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
        echo "$(basename "$0"): error: '$PYTHON' cannot import torch (no" \
            "$_ROOT/.venv). Run 'make install' in $_ROOT to create .venv" \
            "(then used automatically), activate an environment with" \
            "torch, or set PYTHON=/path/to/python." >&2
        exit 1
    fi
}

# The launcher's usage: its leading comment.
usage() {
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2
}

# usage_unless MIN_ARGS "$@": the usage and exit status 2 when fewer than
# MIN_ARGS arguments were given (or -h, --help).
usage_unless() {
    local min=$1
    shift
    if [ $# -lt "$min" ] || [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
        usage
        exit 2
    fi
}

# count_or_usage NAME VALUE: VALUE must be a positive number.
count_or_usage() {
    if ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
        echo "$(basename "$0"): error: $1 must be a positive number," \
            "got '$2'." >&2
        usage
        exit 2
    fi
}

# torchrun_python NUM_PROCESSES SCRIPT [ARGS]: SCRIPT in NUM_PROCESSES
# workers of this node through torchrun, the repository importable. Several
# nodes: NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node. Through
# tools/launch_workers.py: each error line once on the console, torchrun's
# report in a log file, the exit status of the process that failed.
# It replaces the shell, so that signals to the launcher reach it.
torchrun_python() {
    local nproc=$1
    shift
    PYTHONPATH="$_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    exec "$PYTHON" "$_ROOT/tools/launch_workers.py" "$(basename "$0")" \
        torchrun \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" \
        --master_port="${PORT:-29500}" \
        "$@"
}
