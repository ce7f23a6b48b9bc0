# `make test` runs every test; `bash .ci/run` installs what they need first.
PYTHON ?= python

.PHONY: test test-rust test-python stubtest develop bench

test: test-rust test-python stubtest

test-rust:
	cargo test --locked

# pytest exits 5 when it collects no tests: that is a failure here, not a pass.
test-python:
	@$(PYTHON) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

stubtest:
	$(PYTHON) -m mypy.stubtest gristmill._native --allowlist stubtest-allowlist.txt

develop:
	maturin develop --profile profiling

bench:
	$(PYTHON) benches/data.py
	$(PYTHON) -m pytest benches -p no:cacheprovider --benchmark-only -s
