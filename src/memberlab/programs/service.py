"""Stored programs: load a file as an immutable version, activate it, read it back, diff two.

Services flush and never commit: the API request or CLI command that calls them owns the
transaction.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from memberlab.core.db import session_tenant
from memberlab.core.errors import InvalidInput, NotFound
from memberlab.core.fastsql import FastStatement
from memberlab.core.models import Tenant
from memberlab.core.tenant_cache import StampedCache
from memberlab.programs.models import ProgramActivation, ProgramVersion
from memberlab.programs.schema import ProgramDefinition
from memberlab.programs.validation import canonical_json, parse_program_text


class ProgramVersionNotFound(NotFound):
    key = "programs.not_found"


class NoActiveProgram(NotFound):
    key = "programs.no_active"


@dataclass(frozen=True)
class LoadResult:
    version: ProgramVersion
    created: bool


def load(session: Session, *, source: str, created_by: str, now: datetime) -> LoadResult:
    """Validate ``source`` and store it as the next version of its program code.

    Loading content identical to a stored version of the same code returns that version.
    """
    program = parse_program_text(source)
    content = canonical_json(program)
    sha = hashlib.sha256(content.encode()).hexdigest()
    existing = session.scalar(
        select(ProgramVersion).where(
            ProgramVersion.code == program.code, ProgramVersion.sha256 == sha
        )
    )
    if existing is not None:
        return LoadResult(existing, created=False)
    latest = session.scalar(
        select(func.max(ProgramVersion.version)).where(ProgramVersion.code == program.code)
    )
    version = ProgramVersion(
        code=program.code,
        version=(latest or 0) + 1,
        sha256=sha,
        definition=program.model_dump(mode="json"),
        source=source,
        created_at=now,
        created_by=created_by,
    )
    session.add(version)
    session.flush()
    return LoadResult(version, created=True)


def get_version(session: Session, version_id: int) -> ProgramVersion:
    version = session.get(ProgramVersion, version_id)
    if version is None:
        raise ProgramVersionNotFound(version=version_id)
    return version


def find_version(session: Session, ref: str) -> ProgramVersion:
    """A version by id (``12``) or by ``code@version`` (``teahouse@3``, ``teahouse`` = latest)."""
    if ref.isdigit():
        return get_version(session, int(ref))
    code, _, number = ref.partition("@")
    query = select(ProgramVersion).where(ProgramVersion.code == code)
    if number:
        if not number.isdigit():
            raise ProgramVersionNotFound(version=ref)
        query = query.where(ProgramVersion.version == int(number))
    version = session.scalar(query.order_by(ProgramVersion.version.desc()).limit(1))
    if version is None:
        raise ProgramVersionNotFound(version=ref)
    return version


def list_versions(session: Session) -> list[ProgramVersion]:
    return list(
        session.scalars(
            select(ProgramVersion).order_by(ProgramVersion.code, ProgramVersion.version)
        )
    )


def activate(
    session: Session,
    *,
    version_id: int,
    effective_from: datetime,
    activated_by: str,
    now: datetime,
) -> ProgramActivation:
    """Make a version the live program from ``effective_from`` on.

    Activations are a history: the active program at a time is the one activated last
    among those already in effect, so an earlier effective date than the one in force is
    refused (it would rewrite what was live).
    """
    version = get_version(session, version_id)
    current = _latest_activation(session)
    if current is not None and effective_from < current.effective_from:
        raise InvalidInput(
            "programs.activation_before",
            effective_from=effective_from.isoformat(),
            current=current.effective_from.isoformat(),
        )
    activation = ProgramActivation(
        version_id=version.id,
        effective_from=effective_from,
        activated_at=now,
        activated_by=activated_by,
    )
    session.add(activation)
    session.flush()
    return activation


def _latest_activation(session: Session) -> ProgramActivation | None:
    return session.scalar(
        select(ProgramActivation)
        .order_by(ProgramActivation.effective_from.desc(), ProgramActivation.id.desc())
        .limit(1)
    )


def active_version(session: Session, *, as_of: datetime) -> ProgramVersion:
    """The version in force at ``as_of``."""
    activation = session.scalar(
        select(ProgramActivation)
        .where(ProgramActivation.effective_from <= as_of)
        .order_by(ProgramActivation.effective_from.desc(), ProgramActivation.id.desc())
        .limit(1)
    )
    if activation is None:
        raise NoActiveProgram()
    return get_version(session, activation.version_id)


_activations = ProgramActivation.__table__
_versions = ProgramVersion.__table__
_tenants = Tenant.__table__


@dataclass(frozen=True)
class InForce:
    """One activation, as the hot path needs it."""

    effective_from: datetime
    activation_id: int
    version_id: int
    sha256: str


# the tenant's activations, kept per process (``core.tenant_cache``), latest first
_ACTIVATIONS: StampedCache[list[InForce]] = StampedCache(
    FastStatement(
        select(
            _tenants.c.config_stamp,
            _activations.c.effective_from,
            _activations.c.id,
            _activations.c.version_id,
            _versions.c.sha256,
        )
        .select_from(
            _tenants.outerjoin(
                _activations.join(
                    _versions,
                    (_versions.c.id == _activations.c.version_id)
                    & (_versions.c.tenant_id == _activations.c.tenant_id),
                ),
                _activations.c.tenant_id == _tenants.c.id,
            )
        )
        .where(_tenants.c.id == bindparam("tenant_id"))
    ),
    lambda rows: sorted(
        (InForce(*row[1:]) for row in rows if row.id is not None),
        key=lambda a: (a.effective_from, a.activation_id),
        reverse=True,
    ),
)


def version_in_force(session: Session, *, as_of: datetime) -> tuple[int, str]:
    """(id, sha256) of the version in force at ``as_of``, for the hot path that keeps parsed
    definitions by version (``ledger.service.program_at``): the activations come from this
    process's memory while the tenant's configuration stamp is unchanged."""
    for activation in _ACTIVATIONS.get(session, session_tenant(session)):
        if activation.effective_from <= as_of:
            return activation.version_id, activation.sha256
    raise NoActiveProgram()


def activations(session: Session) -> list[ProgramActivation]:
    return list(
        session.scalars(
            select(ProgramActivation).order_by(
                ProgramActivation.effective_from, ProgramActivation.id
            )
        )
    )


def definition_of(version: ProgramVersion) -> ProgramDefinition:
    return ProgramDefinition.model_validate(version.definition)


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any


_MISSING = object()


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """Field-by-field differences between two program definitions (as stored JSON).

    Lists of items with a ``code`` are matched by code, so reordering or inserting a tier
    shows as what it is rather than as every later tier changing.
    """
    changes: list[Change] = []
    _diff(before, after, "", changes)
    return changes


def _diff(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            child = f"{path}.{key}" if path else key
            _diff(a.get(key, _MISSING), b.get(key, _MISSING), child, out)
        return
    if isinstance(a, list) and isinstance(b, list) and _coded(a) and _coded(b):
        a_by = {item["code"]: item for item in a}
        b_by = {item["code"]: item for item in b}
        for code in list(a_by) + [c for c in b_by if c not in a_by]:
            _diff(a_by.get(code, _MISSING), b_by.get(code, _MISSING), f"{path}[{code}]", out)
        return
    if a != b:
        out.append(Change(path, None if a is _MISSING else a, None if b is _MISSING else b))


def _coded(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "code" in item for item in items)
