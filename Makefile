# Two commands do everything on a fresh machine with Python 3.11+:
#   make run    set up and serve the API on http://127.0.0.1:8000
#   make test   set up and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# Pinned versions (requirements/lock.txt says how to refresh them); LOCK= resolves afresh.
LOCK   ?= requirements/lock.txt

.PHONY: run test lint bench clean

, := ,

# install(stamp, extras): create the venv if needed and install vpsorg with those extras
# (plus [libvirt] where pkg-config finds libvirt's headers, .ci/setup-libvirt), pinned to
# $(LOCK). Under flock: `make run` and `make test` started together on a fresh clone would
# otherwise both create .venv at once; the second waits, then finds it made.
define install
	flock $(VENV).lock sh -ec '\
		[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV); \
		$(BIN)/pip install --quiet --upgrade pip; \
		extras="$(2)"; \
		if pkg-config --exists libvirt 2>/dev/null; then extras="$${extras:+$$extras,}libvirt"; fi; \
		$(BIN)/pip install --quiet $(if $(LOCK),-c $(LOCK)) -e ".$${extras:+[$$extras]}"; \
		touch $(1)'
endef

# `make run` needs no database driver beyond SQLite's; the suite runs on PostgreSQL too.
$(VENV)/.installed-run: pyproject.toml $(LOCK)
	$(call install,$@,)

$(VENV)/.installed-test: pyproject.toml $(LOCK)
	$(call install,$@,dev$(,)postgres)

# The customers' SDK and `vps` command (client/), tested against this server.
$(VENV)/.installed-client: client/pyproject.toml $(VENV)/.installed-test
	flock $(VENV).lock $(BIN)/pip install --quiet $(if $(LOCK),-c $(LOCK)) -e "./client[dev]"
	touch $@

run: $(VENV)/.installed-run
	$(BIN)/vpsorg serve --demo --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

# The suite runs on SQLite, with Schemathesis against a live server (minutes; once is enough);
# and again on PostgreSQL when VPSORG_TEST_POSTGRES_URL is set (for example
# postgresql://postgres@127.0.0.1:5432/postgres; .ci/run sets it).
test: $(VENV)/.installed-test $(VENV)/.installed-client
	$(BIN)/ruff check src tests bench client
	$(BIN)/mypy
	$(BIN)/mypy --strict client/src
	$(BIN)/python -m pytest client/tests -q
	$(BIN)/python -m pytest --schemathesis $(PYTEST_ARGS)
	@if [ -n "$${VPSORG_TEST_POSTGRES_URL:-}" ]; then \
		echo "== the suite again, on PostgreSQL"; \
		$(BIN)/python -m pytest --db "$$VPSORG_TEST_POSTGRES_URL" $(PYTEST_ARGS); \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/ruff format --check src tests bench

bench: $(VENV)/.installed-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(VENV).lock .pytest_cache .ruff_cache vpsorg.db* .vpsorg
