# `make demo`: install if needed, then pre-train a small ViT with FastMIM on a
# generated dataset and write a reconstruction panel.
# `make lint`: flake8, isort and yapf (settings in setup.cfg) over the tree.
# `make test`: install if needed, lint, then run the test suite.
# `make study [PRESET=smoke|quick|full]`: install if needed, then run the
# Fashion-MNIST study (projects/fashion_mnist_study/run.py) into STUDY_DIR.
PY := .venv/bin/python
DEMO_CONFIG := configs/fastmim/fastmim_vit-tiny-p16_1xb16-coslr-14e_demo-128px.py
DEMO_DIR := work_dirs/demo
PRESET ?= quick
STUDY_DIR ?= work_dirs/study
LINT_PATHS := fastmim_mm tools tests configs projects setup.py

.PHONY: install demo lint test study

install:
	@bash tools/setup_env.sh

demo: install
	$(PY) tools/misc/make_demo_dataset.py data/fastmim_demo
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)
	@echo "Demo finished. Checkpoint: $$(cat $(DEMO_DIR)/last_checkpoint)"
	@echo "Reconstruction panel: $$(ls -t $(abspath $(DEMO_DIR))/reconstructions/*.png | head -n1)"

lint: install
	$(PY) -m flake8 $(LINT_PATHS)
	$(PY) -m isort --check-only --diff $(LINT_PATHS)
	$(PY) -m yapf --diff --recursive $(LINT_PATHS)

test: lint
	$(PY) -m pytest tests -q

study: install
	$(PY) projects/fashion_mnist_study/run.py --preset $(PRESET) --work-dir $(STUDY_DIR)
