"""CLI: ``memberlab member create|show|search|update|erase``."""

from __future__ import annotations

import typer

from memberlab.core.cli_support import (
    JsonOption,
    TenantOption,
    print_json,
    print_table,
    say,
    unit_of_work,
)
from memberlab.core.errors import InvalidInput
from memberlab.core.i18n import t
from memberlab.core.tenants import get_tenant
from memberlab.core.validation import field_errors
from memberlab.members import service
from memberlab.members.schemas import Member, MemberCreate, MemberStatus, MemberUpdate

member_app = typer.Typer(help="Members. / 会员。", no_args_is_help=True)


def _validated(model: type, **values: object):  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise InvalidInput(errors=field_errors(exc.errors(include_url=False))) from None


def _member_ctx(unit) -> service.MemberContext:  # type: ignore[no-untyped-def]
    tenant = get_tenant(unit.session, unit.tenant_id)
    return service.MemberContext(vault=unit.state.vault, timezone=tenant.timezone)


def _headers(*names: str) -> list[str]:
    return [t(f"members.points.{name}") for name in names]


def _print_members(members: list[Member]) -> None:
    if not members:
        say("members.cli.none")
        return
    print_table(
        [
            t("members.column.member_id"),
            t("members.column.mobile"),
            t("members.column.name"),
            t("members.column.enrolled_at"),
            t("members.column.channel"),
            t("members.column.status"),
            t("members.column.tags"),
        ],
        [
            [
                m.member_id,
                m.mobile,
                m.name,
                m.enrolled_at.date(),
                m.enrol_channel,
                m.status,
                ", ".join(m.tags),
            ]
            for m in members
        ],
    )


@member_app.command("create")
def create(
    member_id: str | None = typer.Option(None, "--member-id", help="Default: generated."),
    mobile: str | None = typer.Option(None, help="Mobile number. / 手机号。"),
    name: str | None = typer.Option(None, help="Name. / 姓名。"),
    birthday: str | None = typer.Option(None, help="YYYY-MM-DD"),
    gender: str | None = typer.Option(None, help="female, male, other, unknown"),
    city: str | None = typer.Option(None),
    channel: str | None = typer.Option(None, "--channel", help="Enrolment channel. / 入会渠道。"),
    store: str | None = typer.Option(None, "--store", help="Enrolment store. / 入会门店。"),
    external_id: str | None = typer.Option(None, "--external-id"),
    tag: list[str] = typer.Option([], "--tag", help="Repeatable. / 可重复。"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Enrol a member. / 新增会员。"""
    data = _validated(
        MemberCreate,
        member_id=member_id,
        mobile=mobile,
        name=name,
        birthday=birthday,
        gender=gender,
        city=city,
        enrol_channel=channel,
        enrol_store=store,
        external_id=external_id,
        tags=tag or None,
    )
    with unit_of_work(tenant) as unit:
        ctx = _member_ctx(unit)
        member = service.enrol(unit.session, data, ctx=ctx, now=unit.now)
        view = service.view(unit.session, member, ctx=ctx, reveal=True)
    if as_json:
        print_json(view)
    else:
        say("members.cli.created", member_id=view.member_id)


@member_app.command("show")
def show(
    member_id: str = typer.Argument(..., help="Member id. / 会员号。"),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Show one member: profile, tier, points, open lots, last entries. / 查看会员。"""
    from memberlab.ledger import service as ledger
    from memberlab.programs.service import NoActiveProgram

    with unit_of_work(tenant) as unit:
        ctx = _member_ctx(unit)
        view = service.view(
            unit.session, service.get(unit.session, member_id), ctx=ctx, reveal=True
        )
        ledger_ctx = ledger.LedgerContext(
            unit.session, unit.tenant_id, unit.now, unit.state.vault, "cli", ctx.timezone
        )
        try:
            points = ledger.member_points(ledger_ctx, member_id)
        except NoActiveProgram:
            points = None
    if as_json:
        print_json(
            {
                **view.model_dump(mode="json"),
                "points": points.model_dump(mode="json") if points else None,
            }
        )
        return
    print_table(
        ["", ""],
        [[t(f"members.field.{k}"), v] for k, v in view.model_dump().items()],
        title=view.member_id,
    )
    if points is None:
        return
    balances = points.balances
    print_table(
        _headers("tier", "growth", "available", "pending", "debt", "next_tier", "to_go"),
        [
            [
                points.tier_name,
                points.growth_value,
                balances.available,
                balances.pending,
                balances.debt,
                points.next_tier_name or "",
                points.to_next_tier or "",
            ]
        ],
    )
    print_table(
        _headers("lot", "source", "remaining", "expires"),
        [[lot.seq, lot.source, lot.remaining, lot.expires_at or ""] for lot in points.lots],
    )
    print_table(
        _headers("seq", "kind", "at", "points", "balance", "reference"),
        [
            [e.seq, e.kind, e.at, e.points, e.balance, e.reference or ""]
            for e in points.last_entries[:20]
        ],
    )


@member_app.command("search")
def search(
    mobile: str | None = typer.Option(None),
    member_id: str | None = typer.Option(None, "--member-id"),
    external_id: str | None = typer.Option(None, "--external-id"),
    tag: str | None = typer.Option(None),
    status: MemberStatus | None = typer.Option(None),
    limit: int = typer.Option(50, min=1, max=10_000),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Find members (personal data masked). / 查找会员（个人信息脱敏）。"""
    with unit_of_work(tenant) as unit:
        ctx = _member_ctx(unit)
        found = service.search(
            unit.session,
            ctx=ctx,
            member_id=member_id,
            external_id=external_id,
            mobile=mobile,
            tag=tag,
            status=status,
            limit=limit,
        )
        views = [service.view(unit.session, m, ctx=ctx, reveal=False) for m in found]
    if as_json:
        print_json(views)
    else:
        _print_members(views)


@member_app.command("update")
def update(
    member_id: str = typer.Argument(...),
    mobile: str | None = typer.Option(None),
    name: str | None = typer.Option(None),
    birthday: str | None = typer.Option(None, help="YYYY-MM-DD"),
    city: str | None = typer.Option(None),
    status: MemberStatus | None = typer.Option(None),
    tenant: str | None = TenantOption,
    as_json: bool = JsonOption,
) -> None:
    """Change a member's profile. / 修改会员资料。"""
    data = _validated(
        MemberUpdate, mobile=mobile, name=name, birthday=birthday, city=city, status=status
    )
    with unit_of_work(tenant) as unit:
        ctx = _member_ctx(unit)
        member = service.update(unit.session, member_id, data, ctx=ctx, now=unit.now)
        view = service.view(unit.session, member, ctx=ctx, reveal=True)
    if as_json:
        print_json(view)
    else:
        say("members.cli.updated", member_id=view.member_id)


@member_app.command("erase")
def erase(
    member_id: str = typer.Argument(...),
    tenant: str | None = TenantOption,
    yes: bool = typer.Option(False, "--yes", help="Do not ask. / 不再确认。"),
) -> None:
    """Erase a member's personal data (PIPL/GDPR). / 删除会员个人信息。"""
    if not yes:
        typer.confirm(f"erase {member_id}?", abort=True)
    with unit_of_work(tenant) as unit:
        service.erase(unit.session, member_id, now=unit.now)
    say("members.cli.erased", member_id=member_id)
