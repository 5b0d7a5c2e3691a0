# The two commands a newcomer needs:  `make run`  and  `make test`.  `make check` runs the guard rails.
.PHONY: run test check setup setup-test bench

# The first-party plugins live in plugins/; the checks read them from the source tree.
CHECK_ENV = PYTHONPATH=.:plugins

run: setup
	.venv/bin/studio

test: setup-test
	QT_QPA_PLATFORM=offscreen .venv/bin/python -m pytest

# ruff (lint), mypy (strict on studio/core, studio/plugin_api.py, studio/plugin_kit), import-linter (layers)
check: setup-test
	.venv/bin/ruff check .
	$(CHECK_ENV) .venv/bin/mypy
	$(CHECK_ENV) .venv/bin/lint-imports

setup:
	bash scripts/setup.sh

setup-test:
	bash scripts/setup.sh --test

bench: setup-test
	for b in bench/bench_*.py; do echo "== $$b"; .venv/bin/python $$b || exit 1; done
