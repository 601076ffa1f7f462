"""What every CLI command shares: the app state, a unit of work, output, and error mapping.

Commands are thin: they parse, call the same service the API calls inside ``unit_of_work``,
and print with Rich for people or JSON (``--json``) for scripts. Domain errors are printed
in the chosen language and end the process with exit code 1.
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from memberlab.core.app_state import AppState
from memberlab.core.errors import MemberLabError
from memberlab.core.i18n import t
from memberlab.core.settings import get_settings
from memberlab.core.tenants import get_tenant, list_tenants

console = Console()
err_console = Console(stderr=True)

JsonOption = typer.Option(False, "--json", help="Print JSON for scripts. / 以 JSON 输出。")
TenantOption = typer.Option(
    None, "--tenant", "-t", help="Tenant slug or id (default: the only tenant). / 租户标识或编号。"
)


_state_override: AppState | None = None


def app_state() -> AppState:
    """The state commands run against: from the settings, or the one ``use_state`` set."""
    return _state_override or _state_from_settings()


@lru_cache
def _state_from_settings() -> AppState:
    return AppState.from_settings(get_settings())


def use_state(state: AppState | None) -> None:
    """Run commands against ``state`` (tests, embedding); ``None`` returns to the settings."""
    global _state_override
    _state_override = state


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


@dataclass
class Unit:
    session: Session
    state: AppState
    now: datetime
    tenant_id: int | None


@contextmanager
def unit_of_work(tenant: str | None = None, *, platform: bool = False) -> Iterator[Unit]:
    """A session that commits when the block succeeds; scoped to ``tenant`` when given.

    With ``tenant`` None and a tenant needed, the only tenant in the store is used.
    """
    state = app_state()
    with state.database.session(platform=platform) as session:
        tenant_id = None
        if not platform:
            tenant_id = resolve_tenant(session, tenant)
            session.info["tenant_id"] = tenant_id
        yield Unit(session, state, state.clock(), tenant_id)


def resolve_tenant(session: Session, ref: str | None) -> int:
    # The default tenant comes from the settings of the state the commands run against.
    ref = ref or app_state().settings.tenant
    if ref:
        return get_tenant(session, ref).id
    tenants = list_tenants(session)
    if len(tenants) == 1:
        return tenants[0].id
    raise MemberLabError("core.cli.tenant_needed", count=len(tenants))


def to_jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(value), ensure_ascii=False, indent=2) + "\n")


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None
) -> None:
    table = Table(title=title, show_lines=False)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*["" if cell is None else str(cell) for cell in row])
    console.print(table)


def say(key: str, **params: Any) -> None:
    console.print(t(key, **params), highlight=False, markup=False, soft_wrap=True)


def report_error(exc: MemberLabError) -> None:
    err_console.print(
        f"[bold red]{t('core.cli.error')}:[/] {escape(exc.message())}",
        highlight=False,
        soft_wrap=True,
    )
    for error in exc.errors:
        where = f"  ({t('core.cli.line', line=error.line)})" if error.line else ""
        err_console.print(
            f"  {error.render()}{where}", highlight=False, markup=False, soft_wrap=True
        )
