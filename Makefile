# `make test` runs every test; `bash .ci/run` installs what they need first.
PYTHON ?= python

.PHONY: test test-rust test-python stubtest typecheck develop bench

test: test-rust test-python stubtest typecheck

test-rust:
	cargo test --locked

# pytest exits 5 when it collects no tests: that is a failure here, not a pass.
test-python:
	@$(PYTHON) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

stubtest:
	$(PYTHON) -m mypy.stubtest gristmill._native --allowlist stubtest-allowlist.txt

typecheck:
	$(PYTHON) -m mypy python/gristmill --ignore-missing-imports

develop:
	maturin develop --profile profiling

# Each script runs gristmill and its peer on the same real data in one run and prints a
# Markdown table of times and ratios (see benches/RESULTS.md).
bench:
	$(PYTHON) -m pip install -q -e '.[bench]'
	$(PYTHON) benches/data.py
	$(PYTHON) benches/bench_tokenizer.py --mb 16 --repeat 3
	$(PYTHON) benches/bench_tokenizer_onepass.py --mb 96 --encoding o200k_base --steady
	$(PYTHON) benches/bench_tokenizer_onepass.py --mb 96 --encoding cl100k_base --steady
	$(PYTHON) benches/bench_tokenizer_sources.py --encoding o200k_base
	$(PYTHON) benches/bench_threads.py --seconds 120
	$(PYTHON) benches/bench_train.py --mb 100 --vocab-size 32768 --threads 2 --repeat 2
	$(PYTHON) benches/bench_minhash.py --mb 32 --peer-mb 4 --dedup-mb 64
	$(PYTHON) benches/scurve_minhash.py --files 1200 --edited 1200
	$(PYTHON) benches/bench_suffix.py --corpus linux --mb 100
	$(PYTHON) benches/sa_ceiling.py --corpus linux --mb 100
