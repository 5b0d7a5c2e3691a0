# The two commands a newcomer needs:  `make run`  and  `make test`.
.PHONY: run test setup setup-test bench

run: setup
	.venv/bin/studio

test: setup-test
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

bench: setup-test
	for b in bench/bench_*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done
