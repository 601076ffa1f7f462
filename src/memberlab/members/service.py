"""Members: enrol, update, find, search, erase.

Personal fields go through the vault on the way in and out; lists show them masked.
Services flush and never commit.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from memberlab.core.db import session_tenant
from memberlab.core.errors import Conflict, FieldError, InvalidInput, NotFound
from memberlab.core.fastsql import FastStatement
from memberlab.core.pii import PersonalDataVault, mask_mobile, mask_name
from memberlab.members.models import Member, MemberTag
from memberlab.members.phones import normalise_mobile
from memberlab.members.schemas import Member as MemberView
from memberlab.members.schemas import MemberCreate, MemberStatus, MemberUpdate


class MemberNotFound(NotFound):
    key = "members.not_found"


class MemberConflict(Conflict):
    key = "members.conflict"


@dataclass(frozen=True)
class MemberContext:
    """What member operations need besides the session: the vault and the tenant's zone."""

    vault: PersonalDataVault
    timezone: str = "Asia/Shanghai"


def enrol(session: Session, data: MemberCreate, *, ctx: MemberContext, now: datetime) -> Member:
    errors: list[FieldError] = []
    mobile = _checked_mobile(data.mobile, errors)
    _check_birthday(data.birthday, _local_today(now, ctx.timezone), errors)
    enrolled_at = _aware(data.enrolled_at, ctx.timezone) if data.enrolled_at else now
    if data.enrolled_at and enrolled_at > now:
        errors.append(
            FieldError("enrolled_at", "members.v.future", {"value": data.enrolled_at.isoformat()})
        )
    if errors:
        raise InvalidInput(errors=errors)

    member_id = data.member_id or _new_member_id(session)
    _check_unique(
        session, member_id=member_id, external_id=data.external_id, mobile=mobile, vault=ctx.vault
    )
    member = Member(
        member_id=member_id,
        external_id=data.external_id,
        enrolled_at=enrolled_at,
        enrol_channel=data.enrol_channel,
        enrol_store=data.enrol_store,
        gender=data.gender.value if data.gender else None,
        city=data.city,
        language=data.language,
        consents=dict(data.consents or {}),
        status=MemberStatus.ACTIVE.value,
        created_at=now,
        updated_at=now,
    )
    _set_mobile(member, mobile, ctx.vault)
    member.name_sealed = ctx.vault.seal(data.name)
    _set_birthday(member, data.birthday, ctx.vault)
    session.add(member)
    session.flush()
    _set_tags(session, member, data.tags or [])
    return member


def update(
    session: Session, member_id: str, data: MemberUpdate, *, ctx: MemberContext, now: datetime
) -> Member:
    member = get(session, member_id)
    if member.erased_at is not None:
        raise MemberConflict("members.erased", member_id=member_id)
    changes = data.model_dump(exclude_unset=True)
    errors: list[FieldError] = []
    mobile = _checked_mobile(changes.get("mobile"), errors) if "mobile" in changes else None
    if "birthday" in changes:
        _check_birthday(changes["birthday"], _local_today(now, ctx.timezone), errors)
    if errors:
        raise InvalidInput(errors=errors)
    if "external_id" in changes or "mobile" in changes:
        _check_unique(
            session,
            member_id=None,
            external_id=changes.get("external_id"),
            mobile=mobile,
            vault=ctx.vault,
            exclude_pk=member.id,
        )

    for field in ("external_id", "city", "language", "enrol_channel", "enrol_store"):
        if field in changes:
            setattr(member, field, changes[field])
    if "gender" in changes:
        member.gender = changes["gender"].value if changes["gender"] else None
    if "status" in changes and changes["status"] is not None:
        member.status = changes["status"].value
    if "mobile" in changes:
        _set_mobile(member, mobile, ctx.vault)
    if "name" in changes:
        member.name_sealed = ctx.vault.seal(changes["name"])
    if "birthday" in changes:
        _set_birthday(member, changes["birthday"], ctx.vault)
    if "consents" in changes:
        # Given consents are merged into the stored ones; null withdraws them all.
        given = changes["consents"]
        member.consents = {} if given is None else {**member.consents, **given}
    if "tags" in changes:
        _set_tags(session, member, changes["tags"] or [])
    member.updated_at = now
    session.flush()
    return member


def get(session: Session, member_id: str) -> Member:
    member = session.scalar(select(Member).where(Member.member_id == member_id))
    if member is None:
        raise MemberNotFound(member_id=member_id)
    return member


@dataclass(frozen=True)
class LedgerMember:
    """What the ledger needs of a member (row id, id, enrolment, birthday), read in one
    prebuilt query on the purchase path instead of the whole ORM object."""

    id: int
    member_id: str
    enrolled_at: datetime
    birthday_month_day: str | None


_members = Member.__table__
_LEDGER_MEMBER_QUERY = select(
    _members.c.id, _members.c.member_id, _members.c.enrolled_at, _members.c.birthday_month_day
).where(
    _members.c.tenant_id == bindparam("tenant_id"),
    _members.c.member_id == bindparam("member_id"),
)
_LEDGER_MEMBER = FastStatement(_LEDGER_MEMBER_QUERY)
_LEDGER_MEMBER_LOCKED = FastStatement(_LEDGER_MEMBER_QUERY.with_for_update())


def get_for_ledger(session: Session, member_id: str, *, lock: bool) -> LedgerMember:
    """The member, locked for this transaction when ``lock`` (on PostgreSQL: a row lock, so
    concurrent writes for one member queue up; SQLite's write lock already serializes)."""
    locking = lock and session.get_bind().dialect.name == "postgresql"
    row = (_LEDGER_MEMBER_LOCKED if locking else _LEDGER_MEMBER).first(
        session.connection(), {"tenant_id": session_tenant(session), "member_id": member_id}
    )
    if row is None:
        raise MemberNotFound(member_id=member_id)
    return LedgerMember(*row)


def search(
    session: Session,
    *,
    ctx: MemberContext,
    member_id: str | None = None,
    external_id: str | None = None,
    mobile: str | None = None,
    tag: str | None = None,
    status: MemberStatus | None = None,
    after: int | None = None,
    limit: int = 50,
) -> list[Member]:
    """Members matching every given criterion, in enrolment order, ``limit`` at a time.

    ``after`` is the cursor: the internal id of the last member of the previous page.
    """
    query = select(Member).order_by(Member.id).limit(limit)
    if member_id:
        query = query.where(Member.member_id == member_id)
    if external_id:
        query = query.where(Member.external_id == external_id)
    if mobile:
        normalised = normalise_mobile(mobile)
        if normalised is None:
            raise InvalidInput(errors=[FieldError("mobile", "members.v.mobile")])
        query = query.where(Member.mobile_index == ctx.vault.index(normalised))
    if tag:
        query = query.where(Member.id.in_(select(MemberTag.member_pk).where(MemberTag.tag == tag)))
    if status:
        query = query.where(Member.status == status.value)
    if after is not None:
        query = query.where(Member.id > after)
    return list(session.scalars(query))


def erase(session: Session, member_id: str, *, now: datetime) -> Member:
    """Remove a member's personal data (PIPL art. 47, GDPR art. 17).

    The member number and everything non-personal (enrolment date, ledger, totals) stay,
    so the program's books still balance; the member is closed. Erasing twice is a no-op.
    """
    member = get(session, member_id)
    if member.erased_at is not None:
        return member
    member.external_id = None
    member.mobile_sealed = member.mobile_index = member.mobile_masked = None
    member.name_sealed = None
    member.birthday_sealed = member.birthday_month_day = None
    member.gender = None
    member.city = None
    member.consents = {}
    member.status = MemberStatus.CLOSED.value
    member.erased_at = now
    member.updated_at = now
    _set_tags(session, member, [])
    session.flush()
    return member


def view(session: Session, member: Member, *, ctx: MemberContext, reveal: bool) -> MemberView:
    """The member as the API and CLI show it; personal data masked unless ``reveal``."""
    name = ctx.vault.open(member.name_sealed)
    birthday = ctx.vault.open(member.birthday_sealed)
    return MemberView(
        member_id=member.member_id,
        external_id=member.external_id,
        mobile=ctx.vault.open(member.mobile_sealed) if reveal else member.mobile_masked,
        name=name if reveal else mask_name(name),
        birthday=date.fromisoformat(birthday) if (birthday and reveal) else None,
        gender=member.gender,
        city=member.city,
        language=member.language,
        enrolled_at=member.enrolled_at,
        enrol_channel=member.enrol_channel,
        enrol_store=member.enrol_store,
        consents=dict(member.consents or {}),
        tags=tags_of(session, member),
        status=member.status,
        erased=member.erased_at is not None,
        created_at=member.created_at,
        updated_at=member.updated_at,
    )


def tags_of(session: Session, member: Member) -> list[str]:
    return list(
        session.scalars(
            select(MemberTag.tag).where(MemberTag.member_pk == member.id).order_by(MemberTag.tag)
        )
    )


# --- helpers ------------------------------------------------------------------------------


def _checked_mobile(raw: str | None, errors: list[FieldError]) -> str | None:
    if raw is None or raw == "":
        return None
    normalised = normalise_mobile(raw)
    if normalised is None:
        errors.append(FieldError("mobile", "members.v.mobile"))
    return normalised


def _local_today(now: datetime, timezone: str) -> date:
    """Today on the tenant's calendar (in Shanghai, until 08:00 UTC is still on the day before)."""
    return now.astimezone(ZoneInfo(timezone)).date()


def _check_birthday(birthday: date | None, today: date, errors: list[FieldError]) -> None:
    if birthday is None:
        return
    if birthday > today or birthday.year < 1900:
        errors.append(FieldError("birthday", "members.v.birthday", {"value": birthday.isoformat()}))


def _aware(moment: datetime, timezone: str) -> datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(timezone))
    return moment.astimezone(UTC)


def _new_member_id(session: Session) -> str:
    while True:
        candidate = "M" + "".join(secrets.choice("0123456789") for _ in range(11))
        if session.scalar(select(Member.id).where(Member.member_id == candidate)) is None:
            return candidate


def _check_unique(
    session: Session,
    *,
    member_id: str | None,
    external_id: str | None,
    mobile: str | None,
    vault: PersonalDataVault,
    exclude_pk: int | None = None,
) -> None:
    checks: list[tuple[str, Any, Any]] = []
    if member_id is not None:
        checks.append(("member_id", Member.member_id, member_id))
    if external_id is not None:
        checks.append(("external_id", Member.external_id, external_id))
    if mobile is not None:
        checks.append(("mobile", Member.mobile_index, vault.index(mobile)))
    errors: list[FieldError] = []
    for field, column, value in checks:
        query = select(Member.member_id).where(column == value)
        if exclude_pk is not None:
            query = query.where(Member.id != exclude_pk)
        other = session.scalar(query)
        if other is not None:
            errors.append(FieldError(field, "members.v.taken", {"other": other}))
    if errors:
        raise MemberConflict(errors=errors)


def _set_mobile(member: Member, mobile: str | None, vault: PersonalDataVault) -> None:
    member.mobile_sealed = vault.seal(mobile)
    member.mobile_index = vault.index(mobile) if mobile else None
    member.mobile_masked = mask_mobile(mobile)


def _set_birthday(member: Member, birthday: date | None, vault: PersonalDataVault) -> None:
    member.birthday_sealed = vault.seal(birthday.isoformat()) if birthday else None
    member.birthday_month_day = birthday.strftime("%m-%d") if birthday else None


def _set_tags(session: Session, member: Member, tags: list[str]) -> None:
    wanted = sorted(set(tags))
    for existing in session.scalars(select(MemberTag).where(MemberTag.member_pk == member.id)):
        if existing.tag not in wanted:
            session.delete(existing)
        else:
            wanted.remove(existing.tag)
    for tag in wanted:
        session.add(MemberTag(member_pk=member.id, tag=tag))
    session.flush()
