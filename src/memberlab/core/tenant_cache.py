"""A tenant's configuration kept in each server process, checked on every request.

The purchase path needs the program in force and the webhook endpoints on every request,
and they change a few times a year. Reading them is two of a purchase's statements. The
API key lookup that opens every request also reads the tenant's ``config_stamp``, which
every change to that configuration renews in the same transaction (``TenantConfiguration``
in ``core.db``). A ``StampedCache`` answers from memory while the request's stamp is the one
its value was read with, and reads again otherwise: a change committed by any process is
seen by the next request in every process, with no message between them.

Sessions opened without a key (the CLI, jobs, imports) carry no stamp and always read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session

from memberlab.core.db import CONFIG_STAMP
from memberlab.core.fastsql import FastStatement

T = TypeVar("T")


class StampedCache(Generic[T]):
    """One value per tenant, built from the rows of ``statement``.

    ``statement`` takes ``tenant_id`` and returns the tenant's stamp as ``config_stamp`` on
    every row, with at least one row (select from ``tenants``, outer-join the rest), so the
    value is labelled with the stamp it was read with, in the same snapshot."""

    def __init__(self, statement: FastStatement, build: Callable[[Sequence[Any]], T]) -> None:
        self._statement = statement
        self._build = build
        self._by_tenant: dict[int, tuple[str, T]] = {}
        self.reads = 0  # how often the store was read: for tests and curious operators

    def get(self, session: Session, tenant_id: int) -> T:
        stamp = session.info.get(CONFIG_STAMP)
        cached = self._by_tenant.get(tenant_id)
        if stamp is not None and cached is not None and cached[0] == stamp:
            return cached[1]
        rows = self._statement.rows(session.connection(), {"tenant_id": tenant_id})
        self.reads += 1
        value = self._build(rows)
        read_stamp = rows[0].config_stamp if rows else None
        if read_stamp is not None:
            # a stamp this transaction wrote and then rolls back is never read by anyone:
            # its entry is only replaced, never used
            self._by_tenant[tenant_id] = (read_stamp, value)
        return value

    def clear(self) -> None:
        self._by_tenant.clear()
