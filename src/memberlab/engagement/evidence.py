"""Evidence of performance: every file that proves the work, kept in a hash chain (issue 7).

Each deliverable, acceptance, assessment, approval, attendance sheet, ... is copied into the
evidence folder as ``<root>/<tenant>/<engagement>/<0001>-<safe name>`` and recorded with its
SHA-256, size, time and uploader. The items of an engagement are numbered 1, 2, 3, ... and
chained::

    chain_hash = SHA-256(previous_hash + canonical JSON of the item's record)

where the record is ``seq, kind, title, file_name, sha256, size, uploaded_at, uploaded_by``,
canonical JSON has sorted keys, no spaces and unescaped UTF-8, and the first item's
``previous_hash`` is 64 zeros. Changing, removing, reordering or slipping in an item breaks
the chain from there on; the final chain hash fingerprints the whole set.

``verify`` checks the files and the chain against the store; ``export_bundle`` writes a
bundle (``index.pdf``, ``manifest.json`` and ``files/``) that ``verify_bundle`` (or anyone
with a SHA-256 tool) checks on its own, without the database. Nothing is ever half-written:
files are written under a temporary name and renamed, and a stored file whose row is not
committed is removed again.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import secrets
import shutil
import unicodedata
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import IO, Any
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import event, select
from sqlalchemy.orm import Session, SessionTransaction

from memberlab.core.db import session_tenant, utcnow
from memberlab.core.errors import Conflict, FieldError, InvalidInput, NotFound
from memberlab.core.i18n import t
from memberlab.core.models import Tenant
from memberlab.core.settings import Language
from memberlab.engagement.definition import EngagementDefinition
from memberlab.engagement.models import Engagement, EvidenceItem

GENESIS = "0" * 64
MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_TITLE = 300
MAX_FILE_NAME = 300
MAX_UPLOADER = 64
BUNDLE_FORMAT = "memberlab-evidence/1"
MANIFEST = "manifest.json"
INDEX = "index.pdf"
FILES = "files"
CHAINED_FIELDS = (
    "seq",
    "kind",
    "title",
    "file_name",
    "sha256",
    "size",
    "uploaded_at",
    "uploaded_by",
)
DAMAGED = "damaged"  # the "actual hash" of a ZIP entry that cannot be read back
_CHUNK = 1024 * 1024
_PENDING = "memberlab.engagement.evidence.pending"


class Kind(StrEnum):
    DELIVERABLE = "deliverable"  # 交付物
    ACCEPTANCE = "acceptance"  # 验收单
    ASSESSMENT = "assessment"  # 评估报告
    APPROVAL = "approval"  # 审批、确认函
    ATTENDANCE = "attendance"  # 签到表
    PAYMENT = "payment"  # 付款凭证
    CHANGE = "change"  # 变更、补充协议
    CONTRACT = "contract"  # 合同
    QUESTIONNAIRE = "questionnaire"  # 需求调查表 (the client's answers)
    OTHER = "other"


class Status(StrEnum):
    OK = "ok"
    FILE_MISSING = "file_missing"
    FILE_ALTERED = "file_altered"
    CHAIN_BROKEN = "chain_broken"


class InvalidEvidence(InvalidInput):
    key = "engagement.evidence.invalid"


class EvidenceBroken(Conflict):
    """Verification failed; names the failed items and carries the report."""

    key = "engagement.evidence.broken"

    def __init__(self, report: VerificationReport, contract_number: str) -> None:
        errors = [
            FieldError(item.label, finding.key, finding.params)
            for item in report.failed
            for finding in item.findings
        ]
        errors.extend(FieldError("", finding.key, finding.params) for finding in report.findings)
        super().__init__(
            contract=contract_number,
            items=", ".join(f"#{item.seq}" for item in report.failed) or "-",
            errors=errors,
        )
        self.report = report


# --- the chain -------------------------------------------------------------------------------


def iso_instant(moment: datetime) -> str:
    """The upload time as chained: UTC, ISO 8601, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def chain_hash(previous_hash: str, record: Mapping[str, Any]) -> str:
    """``SHA-256(previous_hash + canonical JSON of the record)``, as hex."""
    return hashlib.sha256((previous_hash + canonical_json(record)).encode("utf-8")).hexdigest()


def _record(item: EvidenceItem) -> dict[str, Any]:
    return {
        "seq": item.seq,
        "kind": item.kind,
        "title": item.title,
        "file_name": item.file_name,
        "sha256": item.sha256,
        "size": item.size,
        "uploaded_at": iso_instant(item.uploaded_at),
        "uploaded_by": item.uploaded_by,
    }


# --- verification report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One problem found: its status and a message key with parameters."""

    status: Status
    key: str
    params: dict[str, Any]

    def message(self, lang: Language | None = None) -> str:
        return t(self.key, lang, **self.params)


@dataclass(frozen=True)
class ItemCheck:
    """What verification found for one item (``findings`` empty when it is intact)."""

    seq: int
    kind: str
    title: str
    file_name: str
    path: str | None  # stored path (store) or path inside the bundle
    expected_sha256: str
    actual_sha256: str | None  # None when the file is missing; DAMAGED for a broken ZIP entry
    chain_hash: str
    findings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def problems(self) -> tuple[Status, ...]:
        return tuple(dict.fromkeys(f.status for f in self.findings))

    @property
    def status(self) -> Status:
        """The first problem found (file before chain), or ok; ``problems`` lists them all."""
        return self.findings[0].status if self.findings else Status.OK

    @property
    def label(self) -> str:
        return f"#{self.seq} {self.title} ({self.file_name})"


@dataclass(frozen=True)
class VerificationReport:
    items: tuple[ItemCheck, ...]
    final_chain_hash: str
    findings: tuple[Finding, ...] = ()  # about the whole set (bundle manifest, expected hash)

    @property
    def ok(self) -> bool:
        return not self.findings and all(item.ok for item in self.items)

    @property
    def failed(self) -> tuple[ItemCheck, ...]:
        return tuple(item for item in self.items if not item.ok)

    def item(self, seq: int) -> ItemCheck | None:
        return next((item for item in self.items if item.seq == seq), None)

    def render(self, lang: Language | None = None) -> str:
        """The report as a person reads it: a summary line, then one line per problem."""
        if self.ok:
            return t(
                "engagement.evidence.report.ok",
                lang,
                count=len(self.items),
                hash=self.final_chain_hash,
            )
        lines = [
            t(
                "engagement.evidence.report.failed",
                lang,
                failed=len(self.failed),
                total=len(self.items),
            )
        ]
        for item in self.failed:
            lines.extend(f"  {item.label}: {f.message(lang)}" for f in item.findings)
        lines.extend(f"  {f.message(lang)}" for f in self.findings)
        return "\n".join(lines)


@dataclass(frozen=True)
class _Entry:
    """An item as the chain sees it, from the store or from a manifest."""

    record: dict[str, Any]
    previous_hash: str
    chain_hash: str


def _chain_findings(entries: Sequence[_Entry]) -> list[list[Finding]]:
    """Per entry: is it numbered in turn, linked to the one before, and unchanged?"""
    out: list[list[Finding]] = []
    expected_previous, expected_seq, previous_seq = GENESIS, 1, None
    for entry in entries:
        findings: list[Finding] = []
        seq = entry.record["seq"]
        if seq != expected_seq:
            findings.append(
                Finding(
                    Status.CHAIN_BROKEN,
                    "engagement.evidence.check.seq",
                    {"expected": expected_seq, "seq": seq},
                )
            )
        if entry.previous_hash != expected_previous:
            if previous_seq is None:
                findings.append(
                    Finding(Status.CHAIN_BROKEN, "engagement.evidence.check.first_link", {})
                )
            else:
                findings.append(
                    Finding(
                        Status.CHAIN_BROKEN,
                        "engagement.evidence.check.link",
                        {"previous": previous_seq},
                    )
                )
        if chain_hash(entry.previous_hash, entry.record) != entry.chain_hash:
            findings.append(Finding(Status.CHAIN_BROKEN, "engagement.evidence.check.record", {}))
        out.append(findings)
        expected_previous = entry.chain_hash
        expected_seq = seq + 1
        previous_seq = seq
    return out


def _file_findings(path: str | None, expected: str, actual: str | None) -> list[Finding]:
    if actual is None:
        return [Finding(Status.FILE_MISSING, "engagement.evidence.check.missing", {"path": path})]
    if actual != expected:
        return [
            Finding(
                Status.FILE_ALTERED,
                "engagement.evidence.check.altered",
                {"expected": expected, "actual": actual},
            )
        ]
    return []


def _final_findings(final: str, expected_final_hash: str | None) -> list[Finding]:
    if expected_final_hash is None or expected_final_hash.strip().lower() == final:
        return []
    return [
        Finding(
            Status.CHAIN_BROKEN,
            "engagement.evidence.check.final",
            {"expected": expected_final_hash.strip().lower(), "actual": final},
        )
    ]


def _digest(stream: IO[bytes]) -> str:
    digest = hashlib.sha256()
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def _file_digest(path: Path) -> str | None:
    try:
        with path.open("rb") as stream:
            return _digest(stream)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None


# --- adding evidence -------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\w.\-()+]+")  # \w is Unicode: Chinese names stay readable


def safe_file_name(name: str) -> str:
    """A name safe on every file system: no folders, no odd characters, at most 120 long."""
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip("._ ") or "file"
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem or len(suffix) > 16:
        stem, suffix = base, ""
    suffix = f".{suffix}" if suffix else ""
    return stem[: 120 - len(suffix)] + suffix


def _base_name(name: str) -> str:
    return unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1].strip()


def _check_input(
    kind: str,
    title: str,
    uploaded_by: str,
    source_path: Path | None,
    data: bytes | None,
    file_name: str | None,
) -> list[FieldError]:
    errors: list[FieldError] = []
    if kind not in set(Kind):
        errors.append(
            FieldError("kind", "core.v.choice", {"expected": ", ".join(Kind), "value": kind})
        )
    for loc, text, limit in (
        ("title", title, MAX_TITLE),
        ("uploaded_by", uploaded_by, MAX_UPLOADER),
    ):
        if not text.strip():
            errors.append(FieldError(loc, "core.v.text_empty"))
        elif len(text.strip()) > limit:
            errors.append(FieldError(loc, "core.v.text_too_long", {"max_length": limit}))
    if (source_path is None) == (data is None):
        errors.append(FieldError("file", "engagement.evidence.v.one_source"))
        return errors
    name = file_name if file_name is not None else source_path.name if source_path else ""
    if not _base_name(name):
        errors.append(FieldError("file_name", "core.v.text_empty"))
    elif len(_base_name(name)) > MAX_FILE_NAME:
        errors.append(
            FieldError("file_name", "core.v.text_too_long", {"max_length": MAX_FILE_NAME})
        )
    if data is not None:
        errors.extend(_size_errors("file", len(data)))
    elif source_path is not None:
        try:
            if not source_path.is_file():
                raise FileNotFoundError(source_path)
            errors.extend(_size_errors("source_path", source_path.stat().st_size))
        except OSError:
            errors.append(
                FieldError("source_path", "engagement.evidence.v.unreadable", {"path": source_path})
            )
    return errors


def _size_errors(loc: str, size: int) -> list[FieldError]:
    if size == 0:
        return [FieldError(loc, "engagement.evidence.v.empty")]
    if size > MAX_FILE_BYTES:
        return [
            FieldError(
                loc, "engagement.evidence.v.too_large", {"limit": _megabytes(MAX_FILE_BYTES)}
            )
        ]
    return []


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):g} MB"


def _write_temp(temp: Path, source_path: Path | None, data: bytes | None) -> tuple[str, int]:
    """Copy the upload to ``temp`` (which must not exist), flushed to disk: (SHA-256, size)."""
    digest, size = hashlib.sha256(), 0
    loc = "file" if data is not None else "source_path"
    with (
        temp.open("xb") as out,
        io.BytesIO(data) if data is not None else _open_source(source_path) as source,
    ):
        while chunk := source.read(_CHUNK):
            size += len(chunk)
            if size > MAX_FILE_BYTES:  # a file that grew since it was checked
                raise InvalidEvidence(errors=_size_errors(loc, size))
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    if size == 0:
        raise InvalidEvidence(errors=_size_errors(loc, 0))
    return digest.hexdigest(), size


@contextmanager
def _open_source(path: Path | None) -> Iterator[IO[bytes]]:
    assert path is not None
    try:
        stream = path.open("rb")
    except OSError:
        raise InvalidEvidence(
            errors=[FieldError("source_path", "engagement.evidence.v.unreadable", {"path": path})]
        ) from None
    with stream:
        yield stream


def _fsync_folder(folder: Path) -> None:
    with suppress(OSError):  # not every platform can open a folder
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _engagement(session: Session, engagement_pk: int, *, lock: bool = False) -> Engagement:
    query = select(Engagement).where(Engagement.id == engagement_pk)
    if lock:  # PostgreSQL: SELECT ... FOR UPDATE; SQLite serialises writers (BEGIN IMMEDIATE)
        query = query.with_for_update()
    engagement = session.scalar(query)
    if engagement is None:
        raise NotFound("engagement.evidence.no_engagement", engagement=engagement_pk)
    return engagement


def _items(session: Session, engagement_pk: int) -> list[EvidenceItem]:
    query = (
        select(EvidenceItem)
        .where(EvidenceItem.engagement_pk == engagement_pk)
        .order_by(EvidenceItem.seq, EvidenceItem.id)
    )
    return list(session.scalars(query))


def add_evidence(
    session: Session,
    root: Path,
    *,
    engagement_pk: int,
    kind: str,
    title: str,
    uploaded_by: str,
    now: datetime,
    source_path: Path | None = None,
    data: bytes | None = None,
    file_name: str | None = None,
) -> EvidenceItem:
    """Store one file (``source_path``, or ``data`` with ``file_name``) as the next item.

    The file is written under a temporary name and renamed once its number is known; if the
    row cannot be written, or the session's transaction is not committed, the file is
    removed again. Raises ``InvalidEvidence`` (every bad field), ``NotFound``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tenant_id = session_tenant(session)
    kind = kind.strip().lower()
    errors = _check_input(kind, title, uploaded_by, source_path, data, file_name)
    if errors:
        raise InvalidEvidence(errors=errors)
    name = _base_name(file_name if file_name is not None else Path(str(source_path)).name)
    _engagement(session, engagement_pk)

    folder = Path(root) / str(tenant_id) / str(engagement_pk)
    folder.mkdir(parents=True, exist_ok=True)
    temp = folder / f".upload-{secrets.token_hex(8)}.tmp"
    stored: Path | None = None
    try:
        sha256, size = _write_temp(temp, source_path, data)
        _engagement(session, engagement_pk, lock=True)  # numbers are handed out one at a time
        last = session.scalars(
            select(EvidenceItem)
            .where(EvidenceItem.engagement_pk == engagement_pk)
            .order_by(EvidenceItem.seq.desc())
            .limit(1)
        ).first()
        seq = last.seq + 1 if last is not None else 1
        previous = last.chain_hash if last is not None else GENESIS
        target = folder / f"{seq:04d}-{safe_file_name(name)}"
        _place(temp, target)
        stored = target
        _fsync_folder(folder)
        item = EvidenceItem(
            engagement_pk=engagement_pk,
            seq=seq,
            kind=kind,
            title=title.strip(),
            file_name=name,
            sha256=sha256,
            size=size,
            stored_path=target.relative_to(root).as_posix(),
            uploaded_at=now.astimezone(UTC),
            uploaded_by=uploaded_by.strip(),
            previous_hash=previous,
        )
        item.chain_hash = chain_hash(previous, _record(item))
        session.add(item)
        session.flush()
    except BaseException:
        temp.unlink(missing_ok=True)
        if stored is not None:
            stored.unlink(missing_ok=True)
        raise
    _remove_unless_committed(session, target)
    return item


def _place(temp: Path, target: Path) -> None:
    """Rename ``temp`` to ``target``; a file already there (left by an upload that was never
    committed, or by a row since removed) is not destroyed but kept aside under a dot-name."""
    if target.exists():
        target.rename(target.with_name(f".{target.name}.{secrets.token_hex(4)}.displaced"))
    os.replace(temp, target)


def _remove_unless_committed(session: Session, path: Path) -> None:
    """Remove ``path`` when the session's transaction ends without a commit."""
    pending: list[tuple[Path, tuple[int, int]]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []
        event.listen(session, "after_commit", _on_commit)
        event.listen(session, "after_transaction_end", _on_transaction_end)
    stat = path.stat()
    pending.append((path, (stat.st_dev, stat.st_ino)))


def _on_commit(session: Session) -> None:
    if not session.in_nested_transaction():  # the real commit, not a savepoint's release
        session.info[_PENDING].clear()


def _on_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None or transaction.nested:
        return
    pending = session.info[_PENDING]
    for path, identity in pending:
        with suppress(OSError):
            stat = path.stat()
            if (stat.st_dev, stat.st_ino) == identity:  # not another upload's file since
                path.unlink()
    pending.clear()


# --- verifying the store ---------------------------------------------------------------------


def _inside(root: Path, relative: str) -> Path | None:
    base = Path(root).resolve()
    path = (base / relative).resolve()
    return path if path.is_relative_to(base) else None


def verify(
    session: Session,
    root: Path,
    engagement_pk: int,
    *,
    expected_final_hash: str | None = None,
) -> VerificationReport:
    """Check every stored file against its hash and every row against the chain.

    ``expected_final_hash`` (recorded earlier, e.g. in an acceptance letter) also catches
    items removed from the end or a chain rebuilt from scratch.
    """
    _engagement(session, engagement_pk)
    return _verify_items(root, _items(session, engagement_pk), expected_final_hash)


def _verify_items(
    root: Path, items: Sequence[EvidenceItem], expected_final_hash: str | None = None
) -> VerificationReport:
    entries = [_Entry(_record(i), i.previous_hash, i.chain_hash) for i in items]
    checks: list[ItemCheck] = []
    for item, chain_problems in zip(items, _chain_findings(entries), strict=True):
        path = _inside(root, item.stored_path)
        actual = _file_digest(path) if path is not None else None
        file_problems = _file_findings(item.stored_path, item.sha256, actual)
        checks.append(
            ItemCheck(
                seq=item.seq,
                kind=item.kind,
                title=item.title,
                file_name=item.file_name,
                path=item.stored_path,
                expected_sha256=item.sha256,
                actual_sha256=actual,
                chain_hash=item.chain_hash,
                findings=tuple(file_problems + chain_problems),
            )
        )
    final = items[-1].chain_hash if items else GENESIS
    return VerificationReport(
        tuple(checks), final, tuple(_final_findings(final, expected_final_hash))
    )


# --- the bundle ------------------------------------------------------------------------------


def export_bundle(
    session: Session,
    root: Path,
    engagement_pk: int,
    out_path: Path,
    *,
    lang: Language,
    definition: EngagementDefinition | None = None,
    allow_broken: bool = False,
    now: datetime | None = None,
) -> Path:
    """Write the proof of performance: a ZIP (``.zip``) or a folder with ``index.pdf``,
    ``manifest.json`` and ``files/``.

    Refused (``EvidenceBroken``, naming the items) when verification fails, unless
    ``allow_broken``, which exports anyway and marks the index and manifest. Refused
    (``Conflict``) when ``out_path`` exists (an empty folder is fine). The bundle appears
    whole or not at all.
    """
    out_path = Path(out_path)
    engagement = _engagement(session, engagement_pk)
    if definition is not None and definition.contract_number != engagement.contract_number:
        raise InvalidEvidence(
            "engagement.evidence.other_contract",
            given=definition.contract_number,
            contract=engagement.contract_number,
        )
    items = _items(session, engagement_pk)
    report = _verify_items(root, items)
    if not report.ok and not allow_broken:
        raise EvidenceBroken(report, engagement.contract_number)
    if out_path.exists() and not (out_path.is_dir() and not any(out_path.iterdir())):
        raise Conflict("engagement.evidence.out_exists", path=str(out_path))
    generated = (now or utcnow()).astimezone(UTC)
    checks = {check.seq: check for check in report.items}
    names = {item.id: f"{FILES}/{PurePosixPath(item.stored_path).name}" for item in items}
    manifest = _manifest(engagement, definition, items, names, report, generated)
    pdf = _index_pdf(
        lang=lang,
        contract_number=engagement.contract_number,
        definition=definition,
        items=items,
        report=report,
        generated=generated,
        zone=_tenant_zone(session),
    )
    sources: list[tuple[str, Path, str]] = []
    for item in items:
        check = checks[item.seq]
        path = _inside(root, item.stored_path)
        if check.actual_sha256 is not None and path is not None:
            sources.append((names[item.id], path, check.actual_sha256))
    documents = {INDEX: pdf, MANIFEST: _json_bytes(manifest)}
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.suffix.lower() == ".zip":
        _write_zip(out_path, documents, sources)
    else:
        _write_folder(out_path, documents, sources)
    return out_path


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _manifest(
    engagement: Engagement,
    definition: EngagementDefinition | None,
    items: list[EvidenceItem],
    names: dict[int, str],
    report: VerificationReport,
    generated: datetime,
) -> dict[str, Any]:
    about: dict[str, Any] = {"contract_number": engagement.contract_number}
    if definition is not None:
        about["title"] = definition.title.model_dump()
        for side in ("client", "provider"):
            party = getattr(definition.parties, side)
            about[side] = {"legal_name": party.legal_name, "credit_code": party.credit_code}
    missing = {check.seq for check in report.items if check.actual_sha256 is None}
    return {
        "format": BUNDLE_FORMAT,
        "generated_at": iso_instant(generated),
        "engagement": about,
        "hash_algorithm": "sha256",
        "chain_rule": (
            "chain_hash = sha256_hex(previous_hash + canonical_json(record)), record = "
            f"{{{', '.join(CHAINED_FIELDS)}}}, canonical_json = sorted keys, separators "
            "(',', ':'), UTF-8 unescaped; the first previous_hash is 64 zeros"
        ),
        "genesis": GENESIS,
        "items": [
            {
                **_record(item),
                "path": None if item.seq in missing else names[item.id],
                "previous_hash": item.previous_hash,
                "chain_hash": item.chain_hash,
            }
            for item in items
        ],
        "final_chain_hash": report.final_chain_hash,
        "verified": report.ok,
        "problems": [
            {"seq": check.seq, "status": f.status.value, "detail": f.message("en")}
            for check in report.failed
            for f in check.findings
        ],
    }


def _copy_hashed(source: Path, out: IO[bytes], expected: str, name: str) -> None:
    """Copy a stored file into the bundle; it must be what verification just saw."""
    digest = hashlib.sha256()
    with source.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != expected:
        raise Conflict("engagement.evidence.changed_during_export", path=name)


def _write_zip(
    out_path: Path, documents: dict[str, bytes], sources: list[tuple[str, Path, str]]
) -> None:
    temp = out_path.with_name(f".{out_path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with zipfile.ZipFile(temp, "x", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name, content in documents.items():
                bundle.writestr(name, content)
            for name, source, expected in sources:
                with bundle.open(name, "w") as out:
                    _copy_hashed(source, out, expected, name)
        with temp.open("rb+") as written:
            os.fsync(written.fileno())
        os.replace(temp, out_path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_folder(out_path.parent)


def _write_folder(
    out_path: Path, documents: dict[str, bytes], sources: list[tuple[str, Path, str]]
) -> None:
    temp = out_path.with_name(f".{out_path.name}.{secrets.token_hex(6)}.tmp")
    try:
        (temp / FILES).mkdir(parents=True)
        for name, content in documents.items():
            (temp / name).write_bytes(content)
        for name, source, expected in sources:
            with (temp / name).open("xb") as out:
                _copy_hashed(source, out, expected, name)
        if out_path.is_dir():
            out_path.rmdir()  # empty, checked before
        os.rename(temp, out_path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    _fsync_folder(out_path.parent)


def _tenant_zone(session: Session) -> tzinfo:
    tenant = session.get(Tenant, session_tenant(session))
    try:
        return ZoneInfo(tenant.timezone) if tenant is not None else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


# --- verifying a bundle ----------------------------------------------------------------------


_ZIP_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError)


class _Bundle:
    """Read access to a bundle, zipped or unpacked."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.zip: zipfile.ZipFile | None = None
        if self.path.is_file():
            try:
                self.zip = zipfile.ZipFile(self.path)
            except zipfile.BadZipFile:
                raise InvalidEvidence(
                    "engagement.evidence.not_a_bundle", path=str(self.path)
                ) from None
        elif not self.path.is_dir():
            raise NotFound("engagement.evidence.no_bundle", path=str(self.path))

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()

    def files(self) -> set[str]:
        if self.zip is not None:
            return {
                n for n in self.zip.namelist() if n.startswith(f"{FILES}/") and not n.endswith("/")
            }
        folder = self.path / FILES
        if not folder.is_dir():
            return set()
        return {
            f"{FILES}/{p.relative_to(folder).as_posix()}" for p in folder.rglob("*") if p.is_file()
        }

    def read(self, name: str) -> bytes | None:
        if self.zip is not None:
            try:
                return self.zip.read(name)
            except KeyError:
                return None
            except _ZIP_DAMAGE:
                raise InvalidEvidence("engagement.evidence.bad_manifest", reason="ZIP") from None
        path = self.path / name
        return path.read_bytes() if path.is_file() else None

    def digest(self, name: str) -> str | None:
        """SHA-256 of a file under ``files/``, or None when it is not there."""
        parts = PurePosixPath(name).parts
        if len(parts) < 2 or parts[0] != FILES or ".." in parts or name.startswith("/"):
            return None
        if self.zip is not None:
            try:
                with self.zip.open(name) as stream:
                    return _digest(stream)
            except KeyError:
                return None
            except _ZIP_DAMAGE:  # bytes patched inside the ZIP: its own checksum fails
                return DAMAGED
        return _file_digest(self.path / name)


def _manifest_entries(manifest: Any) -> list[tuple[_Entry, str | None]]:
    """The chained records and file paths of a manifest; ``InvalidEvidence`` when malformed."""
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise InvalidEvidence("engagement.evidence.bad_manifest", reason="format")
    raw_items = manifest.get("items")
    if not isinstance(raw_items, list):
        raise InvalidEvidence("engagement.evidence.bad_manifest", reason="items")
    out: list[tuple[_Entry, str | None]] = []
    for index, raw in enumerate(raw_items):
        fields = (*CHAINED_FIELDS, "previous_hash", "chain_hash")
        if not isinstance(raw, dict) or any(name not in raw for name in fields):
            raise InvalidEvidence("engagement.evidence.bad_manifest", reason=f"items[{index}]")
        typed = all(
            isinstance(raw[n], int) and not isinstance(raw[n], bool) for n in ("seq", "size")
        )
        texts = all(isinstance(raw[n], str) for n in fields if n not in ("seq", "size"))
        path = raw.get("path")
        if not typed or not texts or not (path is None or isinstance(path, str)):
            raise InvalidEvidence("engagement.evidence.bad_manifest", reason=f"items[{index}]")
        record = {name: raw[name] for name in CHAINED_FIELDS}
        out.append((_Entry(record, raw["previous_hash"], raw["chain_hash"]), path))
    return out


def verify_bundle(path: Path, *, expected_final_hash: str | None = None) -> VerificationReport:
    """Check a bundle on its own: every file against the manifest, the manifest's chain, and
    that ``files/`` holds nothing unlisted. No database needed."""
    bundle = _Bundle(path)
    try:
        content = bundle.read(MANIFEST)
        if content is None:
            raise InvalidEvidence("engagement.evidence.not_a_bundle", path=str(path))
        try:
            manifest = json.loads(content.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise InvalidEvidence("engagement.evidence.bad_manifest", reason="JSON") from None
        entries = _manifest_entries(manifest)
        checks: list[ItemCheck] = []
        chain = _chain_findings([entry for entry, _ in entries])
        for (entry, name), chain_problems in zip(entries, chain, strict=True):
            actual = bundle.digest(name) if name is not None else None
            record = entry.record
            checks.append(
                ItemCheck(
                    seq=record["seq"],
                    kind=record["kind"],
                    title=record["title"],
                    file_name=record["file_name"],
                    path=name,
                    expected_sha256=record["sha256"],
                    actual_sha256=actual,
                    chain_hash=entry.chain_hash,
                    findings=tuple(_file_findings(name, record["sha256"], actual) + chain_problems),
                )
            )
        final = entries[-1][0].chain_hash if entries else GENESIS
        findings = _final_findings(final, expected_final_hash)
        if manifest.get("final_chain_hash") != final:
            findings.append(
                Finding(
                    Status.CHAIN_BROKEN,
                    "engagement.evidence.check.manifest_final",
                    {"stated": str(manifest.get("final_chain_hash")), "actual": final},
                )
            )
        listed = {name for _, name in entries if name is not None}
        findings.extend(
            Finding(Status.FILE_ALTERED, "engagement.evidence.check.unlisted", {"path": name})
            for name in sorted(bundle.files() - listed)
        )
        return VerificationReport(tuple(checks), final, tuple(findings))
    finally:
        bundle.close()


# --- the index (PDF) -------------------------------------------------------------------------

_FONT = "STSong-Light"  # reportlab's built-in CJK font: Chinese and Latin, nothing to embed
_MONO = "Courier"
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")


def _index_pdf(
    *,
    lang: Language,
    contract_number: str,
    definition: EngagementDefinition | None,
    items: Iterable[EvidenceItem],
    report: VerificationReport,
    generated: datetime,
    zone: tzinfo,
) -> bytes:
    """The printable index: who, what, when, the hashes, and how to check them."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if _FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(_FONT))

    def tr(key: str, **params: Any) -> str:
        return t(f"engagement.evidence.pdf.{key}", lang, **params)

    body = ParagraphStyle("body", fontName=_FONT, fontSize=9, leading=13)
    cell = ParagraphStyle("cell", parent=body, fontSize=8, leading=10)
    mono = ParagraphStyle("mono", parent=cell, fontName=_MONO, fontSize=7)
    heading = ParagraphStyle("heading", parent=body, fontSize=12, leading=16, spaceBefore=8)
    title = ParagraphStyle("title", parent=body, fontSize=18, leading=24, spaceAfter=6)
    alarm = ParagraphStyle("alarm", parent=body, textColor=colors.red, fontSize=10, leading=14)

    cjk: dict[str, ParagraphStyle] = {}

    def para(text: str, style: ParagraphStyle = body) -> Paragraph:
        markup = escape(text).replace("\n", "<br/>")
        if _CJK.search(text):  # Chinese breaks between any characters, English between words
            style = cjk.setdefault(
                style.name, ParagraphStyle(f"{style.name}-cjk", parent=style, wordWrap="CJK")
            )
        return Paragraph(markup, style)

    def when(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    offset = generated.astimezone(zone).strftime("%z")
    facts: list[list[Any]] = [[para(tr("contract_number"), cell), para(contract_number, cell)]]
    if definition is not None:
        facts.append([para(tr("contract_title"), cell), para(definition.title.get(lang), cell)])
        for side in ("client", "provider"):
            party = getattr(definition.parties, side)
            facts.append(
                [
                    para(tr(side), cell),
                    para(f"{party.legal_name} ({party.credit_code})", cell),
                ]
            )
    facts.extend(
        [
            [
                para(tr("generated"), cell),
                para(f"{when(generated)} ({zone}, UTC{offset[:3]}:{offset[3:]})", cell),
            ],
            [para(tr("count"), cell), para(str(len(report.items)), cell)],
            [para(tr("final_hash"), cell), para(report.final_chain_hash, mono)],
        ]
    )
    width = A4[0] - 30 * mm
    fact_table = Table(facts, colWidths=[35 * mm, width - 35 * mm])
    fact_table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.lightgrey),
            ]
        )
    )
    story: list[Any] = [para(tr("title"), title), fact_table, Spacer(1, 4 * mm)]
    if not report.ok:
        story.append(para(tr("broken", items=", ".join(f"#{i.seq}" for i in report.failed)), alarm))
        for check in report.failed:
            for finding in check.findings:
                story.append(para(f"#{check.seq}: {finding.message(lang)}", alarm))
        story.append(Spacer(1, 3 * mm))

    checks = {check.seq: check for check in report.items}
    header = ["seq", "time", "kind", "item", "uploader", "sha256"]
    rows: list[list[Any]] = [[para(tr(f"col.{name}"), cell) for name in header]]
    marked: list[int] = []
    for row, item in enumerate(items, start=1):
        kind = (
            t(f"engagement.evidence.kind.{item.kind}", lang)
            if item.kind in set(Kind)
            else item.kind
        )
        label = f"{item.title}\n{item.file_name}"
        check = checks.get(item.seq)
        if check is not None and not check.ok:
            label += f"\n[{t(f'engagement.evidence.status.{check.status}', lang)}]"
            marked.append(row)
        rows.append(
            [
                para(str(item.seq), cell),
                para(when(item.uploaded_at), cell),
                para(kind, cell),
                para(label, cell),
                para(item.uploaded_by, cell),
                para(f"{item.sha256[:16]}...", mono),
            ]
        )
    widths = [10 * mm, 25 * mm, 20 * mm, None, 22 * mm, 36 * mm]
    fixed = sum(w for w in widths if w is not None)
    table = Table(rows, colWidths=[w or width - fixed for w in widths], repeatRows=1)
    style = [
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
    ]
    style.extend(("BACKGROUND", (0, r), (-1, r), colors.HexColor("#fde2e2")) for r in marked)
    table.setStyle(TableStyle(style))
    story.extend([table, para(tr("sha_note"), cell), para(tr("how_heading"), heading)])
    fields = ", ".join(CHAINED_FIELDS)
    for key in ("how_files", "how_chain", "how_final"):
        story.append(para(tr(key, fields=fields, genesis=GENESIS), body))

    def footer(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(_FONT, 7)
        canvas.drawString(15 * mm, 8 * mm, f"{contract_number} · {tr('title')}")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, str(doc.page))
        canvas.restoreState()

    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=f"{tr('title')} {contract_number}",
        author="MemberLab",
        invariant=True,
    )
    document.build(story, onFirstPage=footer, onLaterPages=footer)
    return buffer.getvalue()
