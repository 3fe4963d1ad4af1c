# `make demo` and `make test` each set up .venv (created if missing, reused otherwise) first.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1

.PHONY: venv demo test clean-results

$(STAMP): setup.py constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,s3prl]'
	touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) run_benchmark.py --table 1 --profile demo --out results --jobs 2

# pytest's exit code 5 (no test collected) is a failure here.
test: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc

# Real-size checks (a random HuBERT Large: ≈ 2 min, 14 GB RAM, 6 GB of temporary files), kept out of `make test`.
.PHONY: test-heavy
test-heavy: venv
	OMP_NUM_THREADS=1 $(PY) -m pytest -m heavy $(PYTEST_ARGS)

clean-results:
	rm -rf results/*.csv results/*.json results/*.md results/*.png

# Speed and memory, each beside a reference measured in the same run → results/perf.csv (≈ 12 min,
# 10 of them one `make demo`).
# BENCH_ARGS, e.g. "--only padding cache" or "--skip demo" (see python -m bench.perf --help).
.PHONY: bench
bench: venv
	$(PY) -m pip install --quiet -c constraints.txt -r bench/requirements.txt
	$(PY) -m bench.perf $(BENCH_ARGS)
