# Sourced by the launchers. Sets PYTHON: $PYTHON if given, else the
# project's .venv (what `make install` creates) when it exists, else
# `python` from PATH; stops with one line when that python has no torch.
_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$_ROOT/.venv/bin/python" ]; then
        PYTHON="$_ROOT/.venv/bin/python"
    else
        PYTHON=python
    fi
fi
if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    echo "$(basename "$0"): error: '$PYTHON' cannot import torch (no" \
        "$_ROOT/.venv). Run 'make install' in $_ROOT to create .venv" \
        "(then used automatically), activate an environment with torch," \
        "or set PYTHON=/path/to/python." >&2
    exit 1
fi

# torchrun_python NUM_PROCESSES SCRIPT [ARGS]: SCRIPT in NUM_PROCESSES
# workers of this node through torchrun, the repository importable. Several
# nodes: NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node.
torchrun_python() {
    local nproc=$1
    shift
    PYTHONPATH="$_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" \
        --master_port="${PORT:-29500}" \
        "$@"
}
