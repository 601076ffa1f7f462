"""Redeeming catalog rewards for points, and coupons issued and used at checkout.

Stock is shared by all members: a redemption locks the reward's stock row, so that two
members can never take the last item twice.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from memberlab.core.errors import Conflict, NotFound
from memberlab.core.money import from_minor, to_minor
from memberlab.ledger import service as ledger
from memberlab.ledger.idempotency import Answer, replay_or_run
from memberlab.members import service as member_service
from memberlab.members.models import Member
from memberlab.members.service import LedgerMember
from memberlab.programs import rules
from memberlab.programs.schema import ProgramDefinition, Reward, RewardType
from memberlab.rewards.models import Coupon, Redemption, RewardStock
from memberlab.rewards.schemas import CatalogItem, CouponView, RedemptionCreate, RedemptionResult


class RewardNotFound(NotFound):
    key = "rewards.not_found"


class CouponRefused(Conflict):
    key = "rewards.coupon_refused"


def _reward(program: ProgramDefinition, code: str) -> Reward:
    reward = next((r for r in program.rewards if r.code == code), None)
    if reward is None:
        raise RewardNotFound(reward=code)
    return reward


def _issued(session: Session, tenant_id: int, code: str, *, lock: bool) -> int:
    query = select(RewardStock.issued).where(
        RewardStock.tenant_id == tenant_id, RewardStock.reward_code == code
    )
    if lock:
        query = query.with_for_update()
    issued = session.scalar(query)
    if issued is not None:
        return issued
    try:
        with session.begin_nested():
            session.execute(
                insert(RewardStock), [{"tenant_id": tenant_id, "reward_code": code, "issued": 0}]
            )
        return 0
    except IntegrityError:
        # the first redemptions of this reward arrived together: the other made the row
        return session.scalar(query) or 0


def catalog(session: Session, *, tenant_id: int, now: datetime, lang: str) -> list[CatalogItem]:
    _, program = ledger.program_at(session, now)
    issued = dict(
        session.execute(
            select(RewardStock.reward_code, RewardStock.issued).where(
                RewardStock.tenant_id == tenant_id
            )
        ).all()
    )
    today = rules.local(program, now).date()
    items = []
    for reward in program.rewards:
        used = issued.get(reward.code, 0)
        left = None if reward.stock is None else max(reward.stock - used, 0)
        in_dates = (reward.valid_from is None or reward.valid_from <= today) and (
            reward.valid_until is None or today <= reward.valid_until
        )
        items.append(
            CatalogItem(
                code=reward.code,
                name=reward.name.get(lang),
                type=reward.type.value,
                points_cost=reward.points_cost,
                stock=reward.stock,
                issued=used,
                left=left,
                per_member_limit=reward.per_member_limit,
                valid_from=reward.valid_from,
                valid_until=reward.valid_until,
                available=in_dates and left != 0,
            )
        )
    return items


def redeem(ctx: ledger.LedgerContext, member_id: str, body: RedemptionCreate, key: str) -> Answer:
    def run() -> tuple[int, dict[str, Any]]:
        return 201, _redeem(ctx, member_id, body, key).model_dump(mode="json")

    return replay_or_run(
        ctx.session,
        scope="redemption",
        key=key,
        payload={"member_id": member_id, **body.model_dump(mode="json")},
        now=ctx.now,
        run=run,
    )


def _redeem(
    ctx: ledger.LedgerContext, member_id: str, body: RedemptionCreate, key: str
) -> RedemptionResult:
    work = ledger.open_member_by_number(ctx, member_id, ctx.now)  # locks the member first
    member = work.member
    program = work.program
    reward = _reward(program, body.reward)
    today = rules.local(program, ctx.now).date()
    if (reward.valid_from and today < reward.valid_from) or (
        reward.valid_until and today > reward.valid_until
    ):
        raise Conflict(
            "rewards.not_valid_now",
            reward=reward.code,
            valid_from=str(reward.valid_from or ""),
            valid_until=str(reward.valid_until or ""),
        )
    if reward.per_member_limit is not None:
        taken = (
            ctx.session.scalar(
                select(func.coalesce(func.sum(Redemption.quantity), 0)).where(
                    Redemption.member_pk == member.id, Redemption.reward_code == reward.code
                )
            )
            or 0
        )
        if taken + body.quantity > reward.per_member_limit:
            raise Conflict(
                "rewards.member_limit",
                reward=reward.code,
                limit=reward.per_member_limit,
                taken=taken,
            )
    issued = _issued(ctx.session, ctx.tenant_id, reward.code, lock=True)
    if reward.stock is not None and issued + body.quantity > reward.stock:
        raise Conflict(
            "rewards.out_of_stock", reward=reward.code, left=max(reward.stock - issued, 0)
        )
    points = reward.points_cost * body.quantity
    try:
        outcome = work.take(
            rules.redeem(
                work.state, points, ctx.now, key, {"reward": reward.code, "quantity": body.quantity}
            )
        )
    except rules.RuleError as error:
        raise ledger.refused(error, "reward") from None
    ctx.session.execute(
        RewardStock.__table__.update()
        .where(RewardStock.tenant_id == ctx.tenant_id, RewardStock.reward_code == reward.code)
        .values(issued=RewardStock.issued + body.quantity)
    )
    redemption = Redemption(
        member_pk=member.id,
        reward_code=reward.code,
        quantity=body.quantity,
        points=points,
        unit_cost=to_minor(reward.unit_cost, program.currency),
        entry_seq=outcome.entries[-1].seq,
        occurred_at=ctx.now,
        reference=key,
    )
    ctx.session.add(redemption)
    ctx.session.flush()
    coupons = []
    if reward.type is RewardType.COUPON and reward.coupon is not None:
        for _ in range(body.quantity):
            coupon = Coupon(
                code=_coupon_code(),
                member_pk=member.id,
                reward_code=reward.code,
                redemption_id=redemption.id,
                value=to_minor(reward.coupon.value, program.currency),
                min_spend=to_minor(reward.coupon.min_spend, program.currency),
                issued_at=ctx.now,
                valid_until=ctx.now + timedelta(days=reward.coupon.validity_days),
                status="issued",
            )
            ctx.session.add(coupon)
            coupons.append(coupon)
        ctx.session.flush()
    work.save()
    return RedemptionResult(
        member_id=member.member_id,
        reward=reward.code,
        quantity=body.quantity,
        points=points,
        available=work.state.available,
        coupons=[coupon_view(c, program.currency) for c in coupons],
    )


def grant_coupon(
    ctx: ledger.LedgerContext, member_id: str, reward_code: str, *, reference: str
) -> CouponView:
    """A coupon of the catalog given without points (a recovery gesture, a goodwill
    present): it counts against the reward's stock like a redemption; no ledger entry."""
    member = member_service.get(ctx.session, member_id)
    _, program = ledger.program_at(ctx.session, ctx.now)
    reward = _reward(program, reward_code)
    if reward.type is not RewardType.COUPON or reward.coupon is None:
        raise Conflict("rewards.not_a_coupon", reward=reward.code)
    issued = _issued(ctx.session, ctx.tenant_id, reward.code, lock=True)
    if reward.stock is not None and issued + 1 > reward.stock:
        raise Conflict(
            "rewards.out_of_stock", reward=reward.code, left=max(reward.stock - issued, 0)
        )
    ctx.session.execute(
        RewardStock.__table__.update()
        .where(RewardStock.tenant_id == ctx.tenant_id, RewardStock.reward_code == reward.code)
        .values(issued=RewardStock.issued + 1)
    )
    coupon = Coupon(
        code=_coupon_code(),
        member_pk=member.id,
        reward_code=reward.code,
        redemption_id=None,
        value=to_minor(reward.coupon.value, program.currency),
        min_spend=to_minor(reward.coupon.min_spend, program.currency),
        issued_at=ctx.now,
        valid_until=ctx.now + timedelta(days=reward.coupon.validity_days),
        status="issued",
    )
    ctx.session.add(coupon)
    ctx.session.flush()
    return coupon_view(coupon, program.currency)


def _coupon_code() -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud at the till
    return "".join(secrets.choice(alphabet) for _ in range(12))


def coupon_view(coupon: Coupon, currency: str) -> CouponView:
    return CouponView(
        code=coupon.code,
        reward_code=coupon.reward_code,
        value=from_minor(coupon.value, currency),
        min_spend=from_minor(coupon.min_spend, currency),
        issued_at=coupon.issued_at,
        valid_until=coupon.valid_until,
        status=coupon.status,
        used_at=coupon.used_at,
        used_order_id=coupon.used_order_id,
    )


def member_coupons(session: Session, member_id: str, *, now: datetime) -> list[CouponView]:
    member = member_service.get(session, member_id)
    _, program = ledger.program_at(session, now)
    coupons = session.scalars(
        select(Coupon).where(Coupon.member_pk == member.id).order_by(Coupon.id)
    )
    views = []
    for coupon in coupons:
        view = coupon_view(coupon, program.currency)
        if view.status == "issued" and coupon.valid_until <= now:
            view.status = "expired"
        views.append(view)
    return views


def use_coupon(
    session: Session,
    *,
    member: Member | LedgerMember,
    code: str,
    order_id: str,
    gross: int,
    at: datetime,
) -> Coupon:
    """Consume a coupon at checkout: it must be this member's, unused, valid, and reached."""
    coupon = session.scalar(select(Coupon).where(Coupon.code == code).with_for_update())
    if coupon is None or coupon.member_pk != member.id:
        raise CouponRefused("rewards.coupon_unknown", code=code)
    if coupon.status != "issued":
        raise CouponRefused("rewards.coupon_used", code=code, order_id=coupon.used_order_id)
    if coupon.valid_until <= at:
        raise CouponRefused(
            "rewards.coupon_expired", code=code, valid_until=coupon.valid_until.isoformat()
        )
    if gross < coupon.min_spend:
        raise CouponRefused(
            "rewards.coupon_min_spend", code=code, min_spend=str(Decimal(coupon.min_spend) / 100)
        )
    coupon.status, coupon.used_at, coupon.used_order_id = "used", at, order_id
    session.flush()
    return coupon
