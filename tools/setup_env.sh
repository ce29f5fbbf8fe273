#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment at .venv with the whole
# OpenMMLab stack, building mmcv 2.1.0 with its C++ ops once per torch version.
#
# Idempotent: a stamp in .venv records a hash of the requirement files and of
# this script; when it matches nothing is done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
MMCV_VERSION=2.1.0
CACHE_DIR="${FASTMIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fastmim_mm}"
STAMP="$VENV/.fastmim_mm-installed"

want="$(cat "$ROOT"/requirements/*.txt "$ROOT/tools/setup_env.sh" "$ROOT/setup.py" | sha256sum | cut -c1-16)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    exit 0
fi

log() { printf '[setup_env] %s\n' "$*"; }

if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtual environment at $VENV"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
# pip warns once per package about this machine's empty local index folders.
pip_() { "$VPY" -m pip --disable-pip-version-check "$@" 2> >(grep -v 'is ignored: it is neither' >&2); }

log "installing torch and the build tools"
pip_ install -q -r "$ROOT/requirements/build.txt"
pip_ install -q torch==2.14.1 torchvision==0.29.1

torch_ver="$("$VPY" -c 'import torch; print(torch.__version__)')"
if ! "$VPY" -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
    wheel_dir="$CACHE_DIR/mmcv-$MMCV_VERSION-torch-$torch_ver"
    wheel="$(ls "$wheel_dir"/mmcv-*.whl 2>/dev/null | head -n1 || true)"
    if [[ -z "$wheel" ]]; then
        log "building mmcv $MMCV_VERSION with C++ ops for torch $torch_ver (about 9 minutes on 2 cores, once)"
        src="$(mktemp -d)"
        trap 'rm -rf "$src"' EXIT
        pip_ download -q --no-deps --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" -d "$src"
        tar -xzf "$src"/mmcv-*.tar.gz -C "$src"
        pkg="$(ls -d "$src"/mmcv-*/)"
        # torch >= 2.6 headers need C++20; mmcv 2.1.0 hard-codes older standards.
        sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$pkg/setup.py"
        mkdir -p "$wheel_dir"
        (cd "$pkg" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
            "$VPY" -m pip wheel -q --disable-pip-version-check --no-build-isolation --no-deps -w "$wheel_dir.tmp" .)
        mv "$wheel_dir.tmp"/mmcv-*.whl "$wheel_dir"/ && rmdir "$wheel_dir.tmp"
        wheel="$(ls "$wheel_dir"/mmcv-*.whl | head -n1)"
    else
        log "reusing cached mmcv wheel $wheel"
    fi
    pip_ install -q "$wheel"
fi

log "installing the OpenMMLab stack, test tools and fastmim_mm (editable)"
pip_ install -q -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/transfer.txt" \
    -r "$ROOT/requirements/tests.txt"
pip_ install -q --no-build-isolation --no-deps -e "$ROOT"

"$VPY" -c "import mmcv.ops, mmdet, mmseg, mmpretrain, fastmim_mm" \
    || { log "import check failed: see the messages above"; exit 1; }
echo "$want" > "$STAMP"
log "done: $VENV"
