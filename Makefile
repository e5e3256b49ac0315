# Conveniences for developers who have make; the README's commands need only Python and pip.
.PHONY: demo test bench
demo:
	pip install . && pertinence check fhir_samples/demo --as-of 2026-01-15
test:
	pip install ".[test]" && python -m pytest
bench:
	python benchmarks/ingest_bench.py
