#!/usr/bin/env bash
# Gather, on a machine with PyPI access, what tools/analysis/gpu_check.sh
# installs on a GPU machine that has Python 3.12, torch, torchvision, numpy,
# scipy, OpenCV, matplotlib and pytest but no package registry: the
# OpenMMLab wheels and the pure-Python (or cp312 manylinux) packages they
# need, and mmcv 2.1.0's source, which gpu_check.sh builds there for that
# machine's torch. Everything lands in .gpu_carry/ (git-ignored, about
# 13 MB); copy it to the GPU machine's checkout of this repository.
#
# Usage: bash tools/analysis/gpu_check_prepare.sh   (after `make install`)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CARRY="${GPU_CARRY:-$ROOT/.gpu_carry}"
PY_TAG="${GPU_PYTHON_VERSION:-3.12}"
# Packages the GPU image lacks (its list: numpy, scipy, opencv, matplotlib,
# pillow, pyyaml, rich, regex, tqdm, six, packaging, einops, click,
# markdown, zipp, ninja, wheel are there). setuptools < 82 keeps
# pkg_resources, which mmcv's setup.py and MMEngine's package lookup import.
PACKAGES=(
    mmengine==0.10.7 mmpretrain==1.2.0 mmdet==3.3.0 mmsegmentation==1.2.2
    addict==2.4.0 yapf==0.43.0 platformdirs==4.14.8 termcolor==3.3.0
    modelindex==0.0.2 model-index==0.1.11 ordered-set==4.1.0 mat4py==0.6.0
    importlib-metadata==10.2.0 lazy-importer==0.1.0 pycocotools==2.0.11
    shapely==2.2.0
    terminaltables==3.1.10 prettytable==3.18.0 wcwidth==0.9.4 ftfy==6.3.1
    simplejpeg==1.9.0 'setuptools==81.0.0'
)
MMCV_VERSION=2.1.0

rm -rf "$CARRY.tmp" && mkdir -p "$CARRY.tmp/wheels"
for spec in "${PACKAGES[@]}"; do
    python3 -m pip download -q --disable-pip-version-check --no-deps \
        --only-binary=:all: --python-version "$PY_TAG" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$CARRY.tmp/wheels" "$spec" 2> >(grep -v 'is ignored' >&2)
done
# The source archive: pip reads its metadata with torch importable, so the
# project's venv runs this download.
PIP_PY="$ROOT/.venv/bin/python"
[[ -x "$PIP_PY" ]] || PIP_PY=python3
"$PIP_PY" -m pip download -q --disable-pip-version-check --no-deps \
    --no-build-isolation --no-binary :all: "mmcv==$MMCV_VERSION" \
    -d "$CARRY.tmp" 2> >(grep -v 'is ignored' >&2)
rm -rf "$CARRY" && mv "$CARRY.tmp" "$CARRY"
echo "[gpu_check_prepare] $(ls "$CARRY/wheels" | wc -l) wheels and" \
    "$(cd "$CARRY" && ls mmcv-*.tar.gz) in $CARRY:" \
    "$(du -sh "$CARRY" | cut -f1)"
