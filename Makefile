# The two set-up commands of the README, and a few for developers.
# Everything installs into the project folder: uv (pinned) in .tools/, the app in .venv/.

UV_VERSION := 0.13.8
UV := .tools/bin/uv
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test lint format bench

demo: .venv/.synced  ## Build the demo store and serve the API on http://127.0.0.1:8000
	$(UV) run --locked memberlab demo

test: .venv/.synced  ## Run the whole test suite (SQLite and PostgreSQL)
	$(UV) run --locked pytest

lint: .venv/.synced
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .

format: .venv/.synced
	$(UV) run --locked ruff format .
	$(UV) run --locked ruff check --fix .

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# Byte-compiled at install: where PYTHONDONTWRITEBYTECODE is set (as on our CI machines),
# Python would otherwise compile every module from source in every process it starts
# (CLI, server workers, bulk import workers, test subprocesses): about 2 s each.
.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --compile-bytecode
	$(UV) run --locked python -m compileall -q src
	@touch $@
