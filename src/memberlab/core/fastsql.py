"""Hot statements run straight on the driver's cursor, compiled once per dialect.

A purchase runs about ten statements. Through ``Connection.execute`` each costs some
80–110 µs of SQLAlchemy's own work on this machine (cache key, compiled-cache lookup,
execution context, parameter construction, result wrapping) on top of the 35 µs the driver
needs: a third of the server's CPU per purchase. ``FastStatement`` keeps what is worth
keeping of SQLAlchemy (the Core statement as the one definition, its SQL for each dialect,
the column types' own bind and result conversions, SQLAlchemy's exception classes) and
does the per-execution part in a few lines: look up the parameters, convert the ones whose
type says so, call the DBAPI cursor, convert the result columns.

What it does not do: Python-side column defaults and ``onupdate`` values (a statement that
would need them is refused when compiled: pass the values), expanding ``IN`` parameters,
``before_cursor_execute`` events and statement logging. It runs in the transaction of the
SQLAlchemy ``Connection`` it is given, like any statement of that connection.

Writes whose answer nobody waits for can be *sent* (``send``, ``send_many``): on PostgreSQL
they wait in the connection's queue and go to the server in one pipeline with the next
statement that needs an answer (a fast statement's rows, any SQLAlchemy statement, the
commit), one round trip for them all. A round trip costs this machine some 60 µs of CPU,
half in the server process, whatever the statement, and a purchase's writes are seven of
them. In the pipeline, sent INSERTs and UPDATEs are combined into few statements
(``_combine``: a purchase's six writes go as two), as each statement costs psycopg a
poll, a send and its execute path. The price: a sent statement's error (a unique key
taken, say) is raised by the statement that flushed the queue, a rollback drops what is
queued, and the values are read when the queue is flushed (pass copies of what may change
after ``send``). ``install`` sets the flushing up on an engine; elsewhere (SQLite, where a
statement is a function call) ``send`` runs at once.
"""

from __future__ import annotations

import re
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, event, exc
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.util import find_tables

_Convert = Callable[[Any], Any] | None


def _sharing(statement: ClauseElement) -> tuple[bool, str] | None:
    """Whether a sent statement may go as one part of a combined statement (``_combine``),
    and how: (True, table) for an INSERT of plain values, which any number of others may
    join; (False, table) for an UPDATE, which must be the only part that writes its table
    (the parts of one statement see the same snapshot, not each other's rows). None for
    anything else (RETURNING, ON CONFLICT, INSERT ... SELECT, other tables read)."""
    if not isinstance(statement, Insert | Update) or statement._returning:
        return None
    table = statement.table
    if set(find_tables(statement, include_crud=True)) != {table}:
        return None
    if isinstance(statement, Insert):
        if statement.select is not None or statement._post_values_clause is not None:
            return None
        return True, table.fullname  # type: ignore[attr-defined]
    return False, table.fullname  # type: ignore[attr-defined]


class _Compiled:
    """One statement's SQL and conversions for one dialect."""

    def __init__(self, statement: ClauseElement, keys: Sequence[str] | None, dialect: Dialect):
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        defaults = [c.key for c in (*compiled.insert_prefetch, *compiled.update_prefetch)]
        if defaults:
            raise ValueError(
                f"FastStatement: columns {defaults} take a Python-side default; give them values"
            )
        if any(b.expanding or b.callable is not None for b in compiled.binds.values()):
            raise ValueError("FastStatement: expanding and callable parameters are not supported")
        self.sql: str = compiled.string
        self.dialect = dialect
        self.error_class = dialect.loaded_dbapi.Error
        # (the name the driver sees, the key in the caller's values, the type's conversion)
        by_name: dict[str, tuple[str, str, _Convert]] = {}
        self.literals: dict[str, Any] = {}  # values written in the statement itself
        for bind, name in compiled.bind_names.items():
            by_name[name] = (
                name,
                bind.key,
                bind.type.dialect_impl(dialect).bind_processor(dialect),
            )
            if not bind.required:
                self.literals[bind.key] = bind.effective_value
        self.positional = dialect.positional
        names = compiled.positiontup if self.positional else list(by_name)
        self.binds = [by_name[name] for name in names or ()]
        self.result_types = [c.type for c in getattr(statement, "exported_columns", ())]
        self._result: tuple[Any, list[_Convert]] | None = None
        self.shares = _sharing(statement) if not self.positional else None

    def parameters(self, values: Mapping[str, Any]) -> Any:
        if self.literals:
            values = {**self.literals, **values}
        try:
            if self.positional:
                return tuple([values[k] if c is None else c(values[k]) for _, k, c in self.binds])
            return {n: values[k] if c is None else c(values[k]) for n, k, c in self.binds}
        except KeyError as missing:
            raise KeyError(f"FastStatement: no value for parameter {missing.args[0]!r}") from None

    def rows(self, cursor: Any) -> list[Any]:
        fetched = cursor.fetchall()
        if self._result is None:
            description = cursor.description
            row_type = namedtuple("Row", [column[0] for column in description], rename=True)  # type: ignore[misc]
            converts = [
                type_.dialect_impl(self.dialect).result_processor(self.dialect, column[1])
                for type_, column in zip(self.result_types, description, strict=True)
            ]
            self._result = (row_type._make, converts)
        make, converts = self._result
        if not any(converts):
            return [make(row) for row in fetched]
        return [
            make([value if c is None else c(value) for c, value in zip(converts, row, strict=True)])
            for row in fetched
        ]


class FastStatement:
    """A Core statement to run many times with few SQLAlchemy layers between it and the
    driver. An INSERT or UPDATE sets the columns its values name, as with
    ``Connection.execute``; it is compiled once per dialect and set of names."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._sets_columns = bool(getattr(statement, "is_dml", False))
        self._compiled: weakref.WeakKeyDictionary[
            Dialect, dict[tuple[str, ...] | None, _Compiled]
        ] = weakref.WeakKeyDictionary()

    def _for(self, dialect: Dialect, values: Mapping[str, Any]) -> _Compiled:
        keys = tuple(values) if self._sets_columns else None
        by_keys = self._compiled.get(dialect)
        if by_keys is None:
            by_keys = self._compiled[dialect] = {}
        compiled = by_keys.get(keys)
        if compiled is None:
            compiled = by_keys[keys] = _Compiled(self.statement, keys, dialect)
        return compiled

    def rows(self, connection: Connection, values: Mapping[str, Any]) -> list[Any]:
        """Run with one set of values; the rows it returns, as named tuples."""
        compiled = self._for(connection.dialect, values)
        cursor = _execute(connection, compiled, compiled.parameters(values), many=False)
        return compiled.rows(cursor) if compiled.result_types else []

    def first(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """The first row, or None."""
        rows = self.rows(connection, values)
        return rows[0] if rows else None

    def run(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """Run once, for what it writes; how many rows it touched."""
        compiled = self._for(connection.dialect, values)
        return _execute(connection, compiled, compiled.parameters(values), many=False).rowcount

    def run_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per set of values, all naming the same columns (the driver's
        ``executemany``: on PostgreSQL, one pipeline of statements, not a round trip each)."""
        if rows:
            compiled = self._for(connection.dialect, rows[0])
            _execute(connection, compiled, [compiled.parameters(row) for row in rows], many=True)

    def send(self, connection: Connection, values: Mapping[str, Any]) -> None:
        """Run once for what it writes, as soon as it is cheapest: on PostgreSQL, with the
        next statement that needs an answer (see the module's notes), elsewhere now."""
        compiled = self._for(connection.dialect, values)
        _send(connection, compiled, compiled.parameters(values), many=False)

    def send_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """``run_many``, sent as ``send`` sends."""
        if rows:
            compiled = self._for(connection.dialect, rows[0])
            _send(connection, compiled, [compiled.parameters(row) for row in rows], many=True)


# --- running statements, now or queued ---------------------------------------------------------

_CURSOR = "memberlab.fastsql.cursor"
_QUEUE = "memberlab.fastsql.queue"
_QUEUES = "memberlab_fastsql_queues"  # on a dialect: whether ``install`` set queueing up

# (statement, its parameters, whether they are a list for executemany)
_Queued = tuple[_Compiled, Any, bool]


def _call(cursor: Any, sql: str, parameters: Any, many: bool) -> None:
    if not many:
        cursor.execute(sql, parameters)
    elif len(parameters) == 1:
        cursor.execute(sql, parameters[0])
    else:
        cursor.executemany(sql, parameters)


def _execute(connection: Connection, compiled: _Compiled, parameters: Any, *, many: bool) -> Any:
    """Run a statement now, after what is queued (all in one round trip); the cursor."""
    pooled = connection.connection
    queued: list[_Queued] | None = pooled.info.pop(_QUEUE, None)
    cursor = _cursor(pooled)
    if queued:
        queued.append((compiled, parameters, many))
        _run_pipeline(cursor, queued, answer_last=True)
        return cursor
    try:
        _call(cursor, compiled.sql, parameters, many)
    except compiled.error_class as error:
        raise _wrapped(compiled.dialect, compiled.sql, parameters, error) from error
    return cursor


def _send(connection: Connection, compiled: _Compiled, parameters: Any, *, many: bool) -> None:
    if not getattr(compiled.dialect, _QUEUES, False):
        _execute(connection, compiled, parameters, many=many)
        return
    info = connection.connection.info
    queued = info.get(_QUEUE)
    if queued is None:
        queued = info[_QUEUE] = []
    queued.append((compiled, parameters, many))


def _run_pipeline(
    cursor: Any, queued: list[_Queued], *, commit: bool = False, answer_last: bool = False
) -> None:
    """Run statements in one pipeline, one round trip, sent ones combined (``_combine``).
    The pipeline ends before anything is fetched: fetching inside it would cost a round trip
    of its own. ``commit``: and the transaction's COMMIT after them, in the same round trip
    (skipped by the server if one of them failed: the transaction is then left failed, for
    the caller to roll back). ``answer_last``: the last statement's results are the
    caller's: it runs as a statement of its own, and its results stay on the cursor."""
    statements = _combine(queued[:-1] if answer_last else queued)
    if answer_last:
        compiled, parameters, many = queued[-1]
        statements.append((compiled.sql, parameters, many))
    try:
        with cursor.connection.pipeline():
            for sql, parameters, many in statements:
                _call(cursor, sql, parameters, many)
            if commit:
                # not ``connection.commit()``: in a pipeline it syncs, a round trip of its
                # own; the driver reads the transaction's end from the server's answer
                cursor.execute("COMMIT")
    except queued[0][0].error_class as error:
        # the driver does not say which statement failed: name them all
        sql = ";\n".join(sql for sql, _, _ in statements)
        raise _wrapped(queued[0][0].dialect, sql, None, error) from error


# --- sent statements combined ------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"%%|%\(([^)]+)\)s")
_COMBINED: dict[tuple[_Compiled, ...], str] = {}  # the SQL of each combination seen
# psycopg parses a statement's placeholders once and keeps the result only for statements of
# at most 4,096 characters and 50 parameters (``psycopg._queries``); parsing a longer one
# again each time costs more than the statements it combines save. So combinations stay
# within both.
_MAX_COMBINED_LENGTH = 4096
_MAX_COMBINED_PARAMETERS = 50


def _combine(queued: list[_Queued]) -> list[tuple[str, Any, bool]]:
    """Sent statements as few statements as their kinds allow: a run of parts that may share
    one (``_sharing``) goes as one ``WITH w0 AS (...), w1 AS (...) <last part>``, with each
    part's parameters renamed ``w<i>_<name>``. In a pipeline every statement costs the
    client a poll, a send and psycopg's execute path (about 100 µs of CPU on this machine);
    a purchase's writes go as two statements instead of six, and a combined statement's
    SQL is the same for the same parts, so the server prepares it as it did the parts.
    Where two sequential statements would see each other's rows, they stay apart; a
    foreign key is checked at the end of the combined statement, as at the end of each."""
    statements: list[tuple[str, Any, bool]] = []
    group: list[tuple[_Compiled, Any]] = []
    written: dict[str, bool] = {}  # table -> only INSERTs of plain values write it so far
    size = [len("WITH "), 0]  # the group's combined SQL length (at most) and parameters

    def close_group() -> None:
        if len(group) == 1:
            statements.append((group[0][0].sql, group[0][1], False))
        elif group:
            parts = tuple(compiled for compiled, _ in group)
            sql = _COMBINED.get(parts)
            if sql is None:
                if len(_COMBINED) > 1000:
                    _COMBINED.clear()
                sql = _COMBINED[parts] = _combined_sql(parts)
            values = {}
            for i, (_, parameters) in enumerate(group):
                for name, value in parameters.items():
                    values[f"w{i}_{name}"] = value
            statements.append((sql, values, False))
        group.clear()
        written.clear()
        size[:] = [len("WITH "), 0]

    for compiled, parameters, many in queued:
        shares = compiled.shares
        if shares is None:
            close_group()
            statements.append((compiled.sql, parameters, many))
            continue
        insert, table = shares
        # "w<i> AS (...), " around it and "w<i>_" before each parameter's name
        length = len(compiled.sql) + len("w000 AS (), ") + len("w000_") * len(compiled.binds)
        for values in parameters if many else (parameters,):
            if (
                (table in written and not (insert and written[table]))
                or size[0] + length > _MAX_COMBINED_LENGTH
                or size[1] + len(values) > _MAX_COMBINED_PARAMETERS
            ):
                close_group()
            group.append((compiled, values))
            written[table] = insert and written.get(table, True)
            size[0] += length
            size[1] += len(values)
    close_group()
    return statements


def _combined_sql(parts: tuple[_Compiled, ...]) -> str:
    def renamed(i: int, sql: str) -> str:
        return _PLACEHOLDER.sub(
            lambda m: "%%" if m.group(1) is None else f"%(w{i}_{m.group(1)})s", sql
        )

    ctes = ", ".join(f"w{i} AS ({renamed(i, c.sql)})" for i, c in enumerate(parts[:-1]))
    return f"WITH {ctes} {renamed(len(parts) - 1, parts[-1].sql)}"


def flush(connection: Connection, *, commit: bool = False) -> None:
    """Send what is queued on ``connection`` now (``install`` calls it before every other
    statement and at the commit, with ``commit``: then the COMMIT goes in the same round
    trip, and the driver's own commit finds the transaction ended). COPY and the like call
    it themselves."""
    pooled = connection.connection
    queued = pooled.info.pop(_QUEUE, None)
    if not queued:
        return
    try:
        _run_pipeline(_cursor(pooled), queued, commit=commit)
    except exc.DBAPIError as error:
        # raised from an event, SQLAlchemy would not see a lost connection as lost
        if connection.dialect.is_disconnect(error.orig, pooled.dbapi_connection, None):
            connection.invalidate(error.orig)  # type: ignore[arg-type]
        raise


def _drop(connection: Connection) -> None:
    if not connection.invalidated:  # a lost connection's queue went with it
        connection.connection.info.pop(_QUEUE, None)


def install(engine: Engine) -> None:
    """Queue ``send``'s statements on this engine's connections, if its driver has pipelines
    (psycopg): flushed before any SQLAlchemy statement and with the COMMIT, dropped at a
    rollback (a savepoint's too: what it queued belongs to it)."""
    if (
        engine.dialect.driver != "psycopg"
        or not engine.dialect.loaded_dbapi.Pipeline.is_supported()
    ):
        return
    setattr(engine.dialect, _QUEUES, True)

    @event.listens_for(engine, "before_cursor_execute")
    def _flush_first(connection: Connection, *_args: Any) -> None:
        flush(connection)

    @event.listens_for(engine, "commit")
    def _flush_with_commit(connection: Connection) -> None:
        try:
            flush(connection, commit=True)
        except BaseException:
            # SQLAlchemy takes its transaction as ended once this raises: end the server's
            # too, or the connection would go on in a failed transaction
            connection.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            raise

    @event.listens_for(engine, "rollback")
    def _drop_on_rollback(connection: Connection) -> None:
        _drop(connection)

    @event.listens_for(engine, "rollback_savepoint")
    def _drop_on_savepoint_rollback(connection: Connection, *_args: Any) -> None:
        _drop(connection)

    @event.listens_for(engine, "reset")
    def _drop_on_reset(_dbapi_connection: Any, record: Any, _reset_state: Any) -> None:
        record.info.pop(_QUEUE, None)


def _cursor(pooled: PoolProxiedConnection) -> Any:
    """The DBAPI connection's cursor for fast statements, opened once and kept with the
    connection (in the pool's per-connection ``info``, which is cleared with it)."""
    cursor = pooled.info.get(_CURSOR)
    if cursor is None or cursor.connection is not pooled.dbapi_connection:
        cursor = pooled.info[_CURSOR] = pooled.dbapi_connection.cursor()  # type: ignore[union-attr]
    return cursor


def _wrapped(dialect: Dialect, sql: str, parameters: Any, error: Exception) -> exc.DBAPIError:
    """The driver's error as SQLAlchemy's (``IntegrityError`` and so on), as callers expect."""
    return exc.DBAPIError.instance(
        sql, parameters, error, dialect.loaded_dbapi.Error, dialect=dialect
    )
