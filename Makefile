# The README's two commands: `make demo` and `make test`. Both set up .venv from scratch.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# CPU torch must be installed before anything that depends on torch, or pip pulls a CUDA build.
TORCH_PIN := torch==2.13.0
CHROMIUM := /usr/bin/chromium
DEMO_DIR ?= ./tracker-runs
PORT ?= 8470

.PHONY: demo test install browser bench clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[all]'
	touch $@

install: $(VENV)/.installed

browser:
	@test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium)

test: install browser
	$(PY) -m pytest -q -p no:cacheprovider tests

demo: install
	$(PY) examples/demo.py --root $(DEMO_DIR) --port $(PORT)

# `make bench QUICK=1` for small sizes; each script writes benchmarks/results/<name>.json, then
# report.py regenerates the figures in docs/benchmarks.md (and any bench: block of the README)
# benchmarks/scaleout.py needs PostgreSQL and S3, so it runs on its own (docs/deploy.md):
#   $(PY) benchmarks/scaleout.py --start-services && $(PY) benchmarks/report.py
BENCHMARKS := log_embedding pca sprites export_tensorboard reduce analysis sync peers dynamics viewer_1m
bench: install
	for b in $(BENCHMARKS); do $(PY) benchmarks/$$b.py $(if $(QUICK),--quick) || exit 1; done
	$(PY) benchmarks/report.py

clean:
	rm -rf $(VENV) tracker-runs .pytest_cache
