#!/usr/bin/env bash
# One call on a bare GPU machine: install the carried packages (see
# tools/analysis/gpu_check_prepare.sh), build mmcv's C++ ops for the
# machine's torch, then run tools/analysis/gpu_check.py, which prints one
# table. It is sized to finish within 10 minutes on one H100/H200 with 16
# cores.
#
#   bash tools/analysis/gpu_check.sh --device cuda [--out DIR]
#   bash tools/analysis/gpu_check.sh --device cpu   # tiny, on a CPU machine
#
# Where mmcv.ops, mmdet and mmseg already import (the project's .venv), the
# set-up is skipped. Set-up goes to $GPU_CHECK_SITE (default
# /tmp/fastmim_site), added to PYTHONPATH. MMCV_WHEEL=PATH installs that
# mmcv wheel (built for the same Python and torch) instead of building.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CARRY="${GPU_CARRY:-$ROOT/.gpu_carry}"
SITE="${GPU_CHECK_SITE:-/tmp/fastmim_site}"
if [[ -n "${PYTHON:-}" ]]; then PY="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"
else PY="$(command -v python3)"; fi
IMPORTS='import mmcv.ops, mmdet, mmseg, mmpretrain, simplejpeg'

log() { printf '[gpu_check.sh] %s\n' "$*"; }
pyval() { "$PY" -c "$1"; }
install() {
    "$PY" -m pip install -q --disable-pip-version-check --no-index \
        --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$@"
}

# Build mmcv 2.1.0's C++ ops (CPU kernels) from the carried source; print
# the wheel's path.
build_mmcv() {
    local build src std inc jobs ninja_bin
    build="$(mktemp -d)"
    tar -xzf "$CARRY"/mmcv-*.tar.gz -C "$build"
    src="$(ls -d "$build"/mmcv-*/)"
    # mmcv hard-codes -std=c++14/17; torch >= 2.13's headers require C++20.
    inc="$(pyval 'import torch.utils.cpp_extension as e
print(e.include_paths()[0])')"
    std=c++17
    if grep -qs 'C++20 or later compatible compiler is required' \
            "$inc/ATen/ATen.h" "$inc"/torch/*.h; then
        std=c++20
    fi
    sed -i -E "s/-std=c\+\+1[47]/-std=$std/g" "$src/setup.py"
    jobs="$(pyval 'import os; print(len(os.sched_getaffinity(0)))')"
    # torch compiles in parallel only through ninja (else one file at a
    # time); the ninja wheel's binary may not be on PATH.
    if ! command -v ninja >/dev/null; then
        ninja_bin="$(pyval 'import ninja; print(ninja.BIN_DIR)' \
            2>/dev/null || true)"
        export PATH="$(dirname "$PY"):${ninja_bin:+$ninja_bin:}$PATH"
    fi
    command -v ninja >/dev/null \
        || log "no ninja: mmcv compiles one file at a time (slow)" >&2
    log "building mmcv's C++ ops (CPU kernels, -std=$std, $jobs jobs)" \
        "for torch $(pyval 'import torch; print(torch.__version__)')" >&2
    # No CUDA kernels (CUDA tensors go to torchvision's: fastmim_mm.compat);
    # mmcv's setup.py builds them whenever it sees a GPU.
    if ! (cd "$src" && CUDA_VISIBLE_DEVICES='' MMCV_WITH_OPS=1 \
            FORCE_CUDA=0 MAX_JOBS="$jobs" "$PY" -m pip wheel -q \
            --disable-pip-version-check --no-index --no-build-isolation \
            --no-deps -w "$build/dist" . > "$build/build.log" 2>&1); then
        tail -n 30 "$build/build.log" >&2
        log "mmcv build failed" >&2
        return 1
    fi
    ls "$build"/dist/mmcv-*.whl
}

start=$SECONDS
export PIP_ROOT_USER_ACTION=ignore
export PYTHONPATH="$SITE:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
if ! pyval "$IMPORTS" 2>/dev/null; then
    if [[ ! -d "$CARRY/wheels" ]]; then
        log "no $CARRY/wheels: run tools/analysis/gpu_check_prepare.sh" \
            "first and copy .gpu_carry/ to this machine"
        exit 1
    fi
    log "installing $(ls "$CARRY"/wheels/*.whl | wc -l) carried wheels" \
        "into $SITE"
    install "$CARRY"/wheels/*.whl
    if [[ -n "${MMCV_WHEEL:-}" ]]; then
        log "installing the given mmcv wheel $MMCV_WHEEL"
        install "$MMCV_WHEEL"
    else
        wheel="$(build_mmcv)"
        install "$wheel"
    fi
    pyval "$IMPORTS"
fi
setup=$((SECONDS - start))
log "set-up took ${setup} s"
# tools/dist_train.sh runs `python` (or $PYTHON): make both this
# interpreter (a bare image may have no `python` at all).
export PYTHON="$PY"
shim="$(mktemp -d)"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$PY" > "$shim/python"
chmod +x "$shim/python"
export PATH="$shim:$PATH"
# The checks get what is left of 9 minutes (at least 4); --budget overrides.
exec "$PY" "$ROOT/tools/analysis/gpu_check.py" --setup-seconds "$setup" \
    --budget "$(( setup < 300 ? 540 - setup : 240 ))" "$@"
