"""The ``memberlab`` command run in tests: through Typer's ``CliRunner`` on the test store.

``running_cli`` points the commands at the test's ``AppState`` (``use_state``) with the
defaults a user's environment would set removed (zh-CN, no default tenant). ``Cli.main``
runs as the console script does, so domain errors end with exit code 1 and a message.
Each run happens in a copy of the current context, so ``--lang`` does not leak.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import copy_context
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from memberlab.cli import app, main
from memberlab.core.app_state import AppState
from memberlab.core.cli_support import use_state
from memberlab.core.settings import get_settings


@dataclass(frozen=True)
class Exited:
    """How the console script ended: its exit code and what it printed."""

    exit_code: int
    stdout: str
    stderr: str


class Cli:
    def __init__(self, state: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
        self.state = state
        self.runner = CliRunner()
        self.monkeypatch = monkeypatch

    def invoke(self, *args: str | Path, input: str | None = None) -> Result:
        """``memberlab ARGS`` through the Typer app."""
        argv = [str(a) for a in args]
        return copy_context().run(self.runner.invoke, app, argv, input=input)

    def ok(self, *args: str | Path) -> str:
        """Run a command that must succeed; returns its standard output."""
        result = self.invoke(*args)
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    def json(self, *args: str | Path) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def main(self, *args: str | Path) -> Exited:
        """``memberlab ARGS`` as the console script runs it (``memberlab.cli.main``)."""
        self.monkeypatch.setattr(sys, "argv", ["memberlab", *(str(a) for a in args)])
        with self.runner.isolation() as (stdout, stderr, _):
            try:
                copy_context().run(main)
                code = 0
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            sys.stdout.flush()
            sys.stderr.flush()
            return Exited(code, stdout.getvalue().decode(), stderr.getvalue().decode())

    def fails(self, *args: str | Path) -> str:
        """Run a command that must fail with exit code 1; returns its standard error."""
        exited = self.main(*args)
        assert exited.exit_code == 1, exited
        return exited.stderr

    def count(self, model: type, tenant_id: int | None = None) -> int:
        with self.state.database.session(
            tenant_id=tenant_id, platform=tenant_id is None
        ) as session:
            return session.scalar(select(func.count()).select_from(model)) or 0


@contextmanager
def running_cli(state: AppState, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    for name in ("MEMBERLAB_LANGUAGE", "MEMBERLAB_TENANT"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    use_state(state)
    try:
        yield Cli(state, monkeypatch)
    finally:
        use_state(None)
        get_settings.cache_clear()
