# Two commands do everything on a fresh machine with Python 3.11+:
#   make run    set up and serve the API on http://127.0.0.1:8000
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@# The libvirt driver's binding, where libvirt's headers are installed (.ci/setup-libvirt)
	if pkg-config --exists libvirt 2>/dev/null; then $(BIN)/pip install --quiet -e '.[dev,libvirt]'; fi
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/vpsorg serve --demo --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# The suite runs on SQLite; and again on PostgreSQL when VPSORG_TEST_POSTGRES_URL is set
# (for example postgresql://postgres@127.0.0.1:5432/postgres; .ci/run sets it).
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	@if [ -n "$${VPSORG_TEST_POSTGRES_URL:-}" ]; then \
		echo "== the suite again, on PostgreSQL"; \
		$(BIN)/python -m pytest --db "$$VPSORG_TEST_POSTGRES_URL" $(PYTEST_ARGS); \
	fi

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/ruff format --check src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache vpsorg.db* .vpsorg
