"""Importing a file into the store: check the prepared rows against it, write, report.

Every import ends with a summary (rows, loaded, skipped, rejected, the rejects file) and
follows the same rules: good rows load and bad rows are reported (or, with
``all_or_nothing``, nothing loads if any row is bad); each kind's writes happen in one
transaction (transactions: one per chunk of members, resumable); rows already in the store
are skipped, so importing the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from memberlab.core.app_state import AppState
from memberlab.core.bulkio import adapter_for, insert_rows
from memberlab.core.errors import InvalidInput
from memberlab.core.i18n import Language, t
from memberlab.core.pii import PersonalDataVault, mask_mobile
from memberlab.dataio.kinds import KINDS
from memberlab.dataio.prepare import Prepared, Reject, prepare
from memberlab.experience.models import SurveyResponse
from memberlab.ledger import bulk
from memberlab.ledger.models import ImportRun, Order, OrderReturn
from memberlab.members.models import Member
from memberlab.programs import service as program_service
from memberlab.programs.schema import ProgramDefinition
from memberlab.retail.models import Product, Store

PREVIEW_REJECTS = 20


@dataclass
class ImportOptions:
    overrides: dict[str, str | None] | None = None  # field -> header, from a mapping file
    sheet: str | None = None
    encoding: str | None = None
    all_or_nothing: bool = False
    dry_run: bool = False
    rejects_path: Path | None = None  # default: beside the file, ``<name>.rejects.csv``
    language: Language = "zh-CN"


@dataclass
class ImportSummary:
    kind: str
    file: str
    format: str
    encoding: str | None
    sheet: str | None
    rows: int
    loaded: int
    skipped: int
    rejected: int
    rejects_file: str | None
    dry_run: bool
    all_or_nothing: bool
    refused: bool  # all-or-nothing and some row was bad: nothing loaded
    mapping: dict[str, Any]
    members_enrolled: int = 0
    first_rejects: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def run_import(
    state: AppState,
    *,
    tenant_id: int,
    kind: str,
    path: Path,
    options: ImportOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportSummary:
    options = options or ImportOptions()
    now = state.clock()
    with state.database.session(tenant_id=tenant_id) as session:
        program = _program(session, now)
    timezone = program.timezone if program else state.settings.timezone
    prepared = prepare(
        path,
        KINDS[kind],
        timezone=timezone,
        now=now,
        overrides=options.overrides,
        sheet=options.sheet,
        encoding=options.encoding,
    )
    if kind in ("transactions", "returns") and program is None:
        raise InvalidInput("dataio.no_program")  # nothing can be applied without a program
    load = _LOADERS[kind]
    with state.database.session(tenant_id=tenant_id) as session:
        frame, more = _against_store(session, prepared, program, state.vault)
    prepared.rejects.extend(more)
    loaded = skipped = enrolled = 0
    refused = options.all_or_nothing and bool(prepared.rejects)
    if not options.dry_run and not refused:
        outcome = load(LoadJob(state, tenant_id, prepared, frame, program, now, options, progress))
        loaded, skipped, enrolled, late = outcome
        prepared.rejects.extend(late)
        if late and options.all_or_nothing:
            refused, loaded, skipped, enrolled = True, 0, 0, 0
    if kind not in ("transactions", "returns") and not options.dry_run:  # bulk records its own
        _record_run(state, tenant_id, kind, path, now, prepared, loaded, skipped, refused)
    prepared.rejects.sort(key=lambda r: (r.row or 0, r.column or ""))
    rejects_file = None
    if not options.dry_run:
        rejects_file = write_rejects(
            prepared.rejects, _rejects_path(path, options, state), options.language
        )
    return ImportSummary(
        kind=kind,
        file=str(path),
        format=prepared.source.format,
        encoding=prepared.source.encoding,
        sheet=prepared.source.sheet,
        rows=prepared.rows,
        loaded=loaded,
        skipped=skipped,
        rejected=prepared.rejected_rows,
        rejects_file=str(rejects_file) if rejects_file else None,
        dry_run=options.dry_run,
        all_or_nothing=options.all_or_nothing,
        refused=refused,
        mapping=prepared.mapping.as_dict(),
        members_enrolled=enrolled,
        first_rejects=[
            render_reject(r, options.language) for r in prepared.rejects[:PREVIEW_REJECTS]
        ],
    )


def _program(session: Session, now: datetime) -> ProgramDefinition | None:
    try:
        version = program_service.active_version(session, as_of=now)
    except program_service.NoActiveProgram:
        return None
    return program_service.definition_of(version)


# --- rejects -------------------------------------------------------------------------------


def render_reject(reject: Reject, language: Language) -> dict[str, Any]:
    return {
        "row": reject.row,
        "column": reject.column,
        "value": reject.value,
        "code": reject.key,
        "reason": t(reject.key, language, **reject.params),
    }


def _rejects_path(path: Path, options: ImportOptions, state: AppState) -> Path:
    if options.rejects_path is not None:
        return options.rejects_path
    beside = path.with_name(f"{path.name}.rejects.csv")
    try:
        beside.touch(exist_ok=True)
        return beside
    except OSError:  # a read-only folder: the store's data folder instead
        folder = state.settings.data_dir / "rejects"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / beside.name


def write_rejects(rejects: list[Reject], path: Path, language: Language) -> Path | None:
    """The rejects as CSV (UTF-8 with BOM, for Excel); none left behind when all went well."""
    if not rejects:
        path.unlink(missing_ok=True)
        return None
    rows = [render_reject(r, language) for r in rejects]
    headers = {key: t(f"dataio.rejects.{key}", language) for key in rows[0]}
    frame = pl.DataFrame(rows, schema=dict.fromkeys(rows[0], pl.String), orient="row").rename(
        headers
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path, include_bom=True)
    return path


def _record_run(
    state: AppState,
    tenant_id: int,
    kind: str,
    path: Path,
    now: datetime,
    prepared: Prepared,
    loaded: int,
    skipped: int,
    refused: bool,
) -> None:
    with state.database.session(tenant_id=tenant_id) as session:
        session.add(
            ImportRun(
                kind=kind,
                file_name=path.name,
                file_sha256=bulk.file_sha256(path),
                started_at=now,
                finished_at=now,
                rows=prepared.rows,
                applied=loaded,
                skipped=skipped,
                rejected=prepared.rejected_rows,
                status="refused" if refused else "done",
            )
        )


# --- checks against the store ----------------------------------------------------------------


def _reject_where(
    frame: pl.DataFrame, prepared: Prepared, condition: pl.Expr, column: str, key: str
) -> tuple[pl.DataFrame, list[Reject]]:
    hits = frame.filter(condition)
    header = prepared.mapping.columns.get(column, column)
    rejects = [
        Reject(row, header, value, key, {"value": value})
        for row, value in hits.select("_row", column).iter_rows()
    ]
    return frame.filter(~condition), rejects


def _against_store(
    session: Session,
    prepared: Prepared,
    program: ProgramDefinition | None,
    vault: PersonalDataVault,
) -> tuple[pl.DataFrame, list[Reject]]:
    """Unknown members and stores, and ids already taken by someone else."""
    frame = prepared.frame
    rejects: list[Reject] = []
    kind = prepared.kind.name
    store_column = "store" if "store" in frame.columns else None
    if store_column and prepared.mapping.columns.get(store_column):
        known_stores = set(session.scalars(select(Store.store_id)))
        if known_stores:  # only a tenant with a store list can say a store is unknown
            condition = pl.col("store").is_not_null() & ~pl.col("store").is_in(list(known_stores))
            frame, more = _reject_where(frame, prepared, condition, "store", "dataio.v.no_store")
            rejects += more
    if kind in ("transactions", "returns", "responses"):
        ids = frame["member_id"].drop_nulls().unique().to_list()
        known = _existing(session, Member.member_id, ids)
        enrols = (
            kind == "transactions"
            and program is not None
            and program.enrolment.enrol_on_first_purchase
        )
        if not enrols:
            condition = pl.col("member_id").is_not_null() & ~pl.col("member_id").is_in(known)
            frame, more = _reject_where(
                frame, prepared, condition, "member_id", "dataio.v.no_member"
            )
            rejects += more
    if kind == "members":
        frame, more = _members_taken(session, prepared, frame, vault)
        rejects += more
    return frame, rejects


def _existing(session: Session, column: Any, values: list[Any]) -> list[Any]:
    found: list[Any] = []
    for start in range(0, len(values), 10_000):
        batch = values[start : start + 10_000]
        found += session.scalars(select(column).where(column.in_(batch)))
    return found


def _members_taken(
    session: Session, prepared: Prepared, frame: pl.DataFrame, vault: PersonalDataVault
) -> tuple[pl.DataFrame, list[Reject]]:
    """A mobile or external id already used by another member is refused, naming them."""
    rejects: list[Reject] = []
    for column, model_column in (("mobile", Member.mobile_index), ("external_id", None)):
        if column not in frame.columns or frame[column].null_count() == frame.height:
            continue
        pairs = frame.select("_row", "member_id", column).drop_nulls(column).rows()
        keys = [vault.index(v) if column == "mobile" else v for _, _, v in pairs]
        target = model_column if model_column is not None else Member.external_id
        owners = {}
        for start in range(0, len(keys), 10_000):
            batch = keys[start : start + 10_000]
            query = select(target, Member.member_id).where(target.in_(batch))
            owners.update(dict(session.execute(query).all()))  # type: ignore[arg-type]
        bad_rows = set()
        header = prepared.mapping.columns[column]
        for (row, member_id, value), key in zip(pairs, keys, strict=True):
            owner = owners.get(key)
            if owner is not None and owner != member_id:
                shown = mask_mobile(value) if column == "mobile" else value
                rejects.append(
                    Reject(row, header, shown, "dataio.v.taken", {"value": shown, "other": owner})
                )
                bad_rows.add(row)
        if bad_rows:
            frame = frame.filter(~pl.col("_row").is_in(list(bad_rows)))
    return frame, rejects


# --- loaders -------------------------------------------------------------------------------

LoadOutcome = tuple[int, int, int, list[Reject]]  # loaded, skipped, members enrolled, rejects


@dataclass
class LoadJob:
    """What a loader needs: the store, the checked rows and how the import was asked for."""

    state: AppState
    tenant_id: int
    prepared: Prepared
    frame: pl.DataFrame  # the rows that passed every check
    program: ProgramDefinition | None
    now: datetime
    options: ImportOptions
    progress: Callable[[int, int], None] | None


def _load_members(job: LoadJob) -> LoadOutcome:
    state, tenant_id, frame, now = job.state, job.tenant_id, job.frame, job.now
    vault = state.vault
    with state.database.session(tenant_id=tenant_id) as session:
        present = set(_existing(session, Member.member_id, frame["member_id"].to_list()))
        fresh = frame.filter(~pl.col("member_id").is_in(list(present)))
        adapter = adapter_for(session)
        columns = [
            "tenant_id", "member_id", "external_id", "mobile_sealed", "mobile_index",
            "mobile_masked", "name_sealed", "birthday_sealed", "birthday_month_day", "gender",
            "city", "language", "enrolled_at", "enrol_channel", "enrol_store", "consents",
            "status", "created_at", "updated_at",
        ]  # fmt: skip
        rows = []
        for record in fresh.iter_rows(named=True):
            mobile, birthday = record["mobile"], record["birthday"]
            rows.append(
                (
                    tenant_id,
                    record["member_id"],
                    record["external_id"],
                    vault.seal(mobile),
                    vault.index(mobile) if mobile else None,
                    mask_mobile(mobile),
                    vault.seal(record["name"]),
                    vault.seal(birthday.isoformat()) if birthday else None,
                    birthday.strftime("%m-%d") if birthday else None,
                    record["gender"],
                    record["city"],
                    record["language"],
                    adapter.dt(record["enrolled_at"] or now),
                    record["enrol_channel"],
                    record["enrol_store"],
                    adapter.js({}),
                    "active",
                    adapter.dt(now),
                    adapter.dt(now),
                )
            )
        insert_rows(session, Member.__table__, columns, rows)  # type: ignore[arg-type]
    return len(rows), frame.height - fresh.height, 0, []


def _upsert(
    job: LoadJob,
    frame: pl.DataFrame,
    model: Any,
    key: str,
    fields: list[str],
    all_fields: list[str],
) -> tuple[int, int]:
    """Insert new rows, update changed ones (only ``fields``, those the file has); unchanged
    rows count as skipped."""
    now = job.now
    with job.state.database.session(tenant_id=job.tenant_id) as session:
        stored = {getattr(row, key): row for row in session.scalars(select(model)).all()}
        new: list[dict[str, Any]] = []
        changed = 0
        for record in frame.iter_rows(named=True):
            values = {f: record[f] for f in fields}
            existing = stored.get(record[key])
            if existing is None:  # a new row takes every field, defaults included
                every = {f: record[f] for f in all_fields if f in record}
                new.append({key: record[key], **every, "updated_at": now})
            elif any(getattr(existing, f) != v for f, v in values.items()):
                session.execute(
                    update(model)
                    .where(model.id == existing.id)
                    .values(**values, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                changed += 1
        if new:
            session.add_all([model(**row) for row in new])
    return len(new) + changed, frame.height - len(new) - changed


def _present(prepared: Prepared, fields: list[str]) -> list[str]:
    """The fields the file has a column for: a price list updates prices, not names."""
    return [f for f in fields if f in prepared.mapping.columns]


def _load_stores(job: LoadJob) -> LoadOutcome:
    every = ["name_zh", "name_en", "city", "city_en", "opened_on"]
    loaded, skipped = _upsert(
        job, job.frame, Store, "store_id", _present(job.prepared, every), every
    )
    return loaded, skipped, 0, []


def _load_products(job: LoadJob) -> LoadOutcome:
    frame = job.frame.rename({"price": "price_minor"})
    present = _present(job.prepared, ["name_zh", "name_en", "category", "price"])
    fields = ["price_minor" if f == "price" else f for f in present]
    every = ["name_zh", "name_en", "category", "price_minor"]
    loaded, skipped = _upsert(job, frame, Product, "sku", fields, every)
    return loaded, skipped, 0, []


RESPONSE_FIELDS = [
    "order_id", "responded_at", "survey", "touchpoint", "channel", "store", "language", "nps",
    "csat", "ces", "rating_speed", "rating_staff", "rating_product_quality", "rating_value",
    "rating_app_usability", "rating_cleanliness", "comment",
]  # fmt: skip


def response_fingerprint(record: dict[str, Any]) -> str:
    """An id for a response that came without one: the same answer always gets the same id."""
    parts = [str(record.get("member_id"))] + [str(record.get(f)) for f in RESPONSE_FIELDS]
    return "R" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:20]


def _load_responses(job: LoadJob) -> LoadOutcome:
    state, tenant_id, frame, now = job.state, job.tenant_id, job.frame, job.now
    with state.database.session(tenant_id=tenant_id) as session:
        records = list(frame.iter_rows(named=True))
        for record in records:
            record["response_id"] = record["response_id"] or response_fingerprint(record)
        ids = [r["response_id"] for r in records]
        present = set(_existing(session, SurveyResponse.response_id, ids))
        member_ids = list({r["member_id"] for r in records if r["member_id"]})
        pks = (
            dict(
                session.execute(
                    select(Member.member_id, Member.id).where(Member.member_id.in_(member_ids))
                ).all()
            )
            if member_ids
            else {}
        )
        adapter = adapter_for(session)
        columns = ["tenant_id", "response_id", "member_pk", *RESPONSE_FIELDS, "source",
                   "created_at"]  # fmt: skip
        rows = []
        for record in records:
            if record["response_id"] in present:
                continue
            present.add(record["response_id"])
            values = [record[f] for f in RESPONSE_FIELDS]
            values[1] = adapter.dt(values[1])
            rows.append(
                (
                    tenant_id,
                    record["response_id"],
                    pks.get(record["member_id"]),
                    *values,
                    "import",
                    adapter.dt(now),
                )
            )
        insert_rows(session, SurveyResponse.__table__, columns, rows)  # type: ignore[arg-type]
    return len(rows), len(records) - len(rows), 0, []


def _load_events(job: LoadJob) -> LoadOutcome:
    """Purchases and returns go through the program's rules, by the engine's bulk path.

    The checked events are first staged as Parquet in the data folder, named by the file's
    content: a copy of exactly what was applied, which analyses can read without the store.
    """
    state, tenant_id, prepared, frame, now = (
        job.state,
        job.tenant_id,
        job.prepared,
        job.frame,
        job.now,
    )
    events = to_events(frame, prepared.kind.name)
    stage(events, state.settings.data_dir, tenant_id, prepared)
    existing = _stored_events(state, tenant_id, events)
    try:
        report = bulk.apply_events(
            state.database,
            tenant_id=tenant_id,
            frame=events,
            file_name=prepared.path.name,
            file_sha256=bulk.file_sha256(prepared.path),
            now=now,
            progress=job.progress,
            all_or_nothing=job.options.all_or_nothing,
            advance_to=now,
            run_kind=prepared.kind.name,
        )
    except bulk.AllOrNothingRefused as refused:
        report = refused.report
    # The engine counts orders and returns; the summary counts the file's rows.
    keyed = events.with_columns(
        pl.when(pl.col("kind") == "return")
        .then(pl.coalesce("return_id", pl.col("order_id") + ":return"))
        .otherwise(pl.col("order_id"))
        .alias("_key")
    )
    refused_keys = {str(r.get("value")) for r in report.rejects if r.get("column") != "member_id"}
    refused_members = {
        str(r.get("value")) for r in report.rejects if r.get("column") == "member_id"
    }
    refused_rows = keyed.filter(
        pl.col("_key").is_in(list(refused_keys)) | pl.col("member_id").is_in(list(refused_members))
    )
    reasons = {str(r.get("value")): r for r in report.rejects}
    late: list[Reject] = []
    for row, key, member_id, kind in refused_rows.select(
        "row", "_key", "member_id", "kind"
    ).iter_rows():
        item = reasons.get(key) or reasons[member_id]
        column = (
            "member_id"
            if item.get("column") == "member_id"
            else ("return_id" if kind == "return" else "order_id")
        )
        value = member_id if column == "member_id" else key
        late.append(
            Reject(
                row,
                prepared.mapping.columns.get(column, column),
                value,
                item["key"],
                {"value": value, **(item.get("params") or {})},
            )
        )
    if job.options.all_or_nothing and late:
        return 0, 0, 0, late
    skipped_rows = keyed.filter(pl.col("_key").is_in(list(existing))).height
    loaded_rows = keyed.height - skipped_rows - refused_rows.height
    return loaded_rows, skipped_rows, report.members_enrolled, late


def _stored_events(state: AppState, tenant_id: int, events: pl.DataFrame) -> set[str]:
    """The orders and returns of ``events`` already in the store (a rerun skips them)."""
    orders = events.filter(pl.col("kind") != "return")["order_id"].unique().to_list()
    returns = events.filter(pl.col("kind") == "return").select(
        pl.coalesce("return_id", pl.col("order_id") + ":return")
    )
    with state.database.session(tenant_id=tenant_id) as session:
        found = set(_existing(session, Order.order_id, orders))
        found |= set(_existing(session, OrderReturn.return_id, returns.to_series().to_list()))
    return found


def stage(events: pl.DataFrame, data_dir: Path, tenant_id: int, prepared: Prepared) -> Path:
    """Write checked events to ``<data>/staging/<tenant>/<kind>-<sha>.parquet``."""
    folder = data_dir / "staging" / str(tenant_id)
    folder.mkdir(parents=True, exist_ok=True)
    sha = bulk.file_sha256(prepared.path)[:16]
    path = folder / f"{prepared.kind.name}-{sha}.parquet"
    events.write_parquet(path)
    return path


def to_events(frame: pl.DataFrame, kind: str) -> pl.DataFrame:
    """The prepared rows in the columns of ``ledger.bulk`` (one row per order or return line)."""
    if kind == "returns":
        frame = frame.with_columns(
            pl.lit("return").alias("kind"),
            pl.lit(None, dtype=pl.String).alias("category"),
            pl.lit(0, dtype=pl.Int64).alias("points_used"),
        )
    return frame.select(
        pl.col("_row").cast(pl.Int64).alias("row"),
        "member_id",
        "order_id",
        pl.col("return_id"),
        "occurred_at",
        "channel",
        "store",
        "sku",
        "category",
        "quantity",
        pl.col("amount").alias("amount_minor"),
        "points_used",
        "kind",
    )


_LOADERS = {
    "members": _load_members,
    "transactions": _load_events,
    "returns": _load_events,
    "responses": _load_responses,
    "products": _load_products,
    "stores": _load_stores,
}
