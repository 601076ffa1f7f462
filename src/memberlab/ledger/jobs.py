"""Jobs as functions of ``as_of``: bring every member's state up to a moment.

Releasing pending points, expiring lots, expiring-soon notices, birthday bonuses and tier
reviews are all ``rules.advance``; running the jobs twice for the same ``as_of`` changes
nothing the second time, because each member's state remembers how far it has advanced.

Only members with something due by ``as_of`` (``member_states.next_due_at``) are loaded;
the others move to ``as_of`` in one UPDATE, exactly what ``rules.advance`` does for a
member with nothing due. An hourly run over a million members thus touches only the few
whose points are released or expire, whose birthday or review falls, in that hour.

A run commits after that UPDATE and after each batch of members, not once at its end:
every member it writes stays locked until the commit, and a live purchase of one of them
waits for it. Each member's advance is whole in its batch, and a run stopped half-way is
finished by the next (the members it reached are no longer due).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import or_, select, update

from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.schemas import JobsReport
from memberlab.ledger.service import LedgerContext, open_member
from memberlab.members.models import Member

BATCH = 500


def run_jobs(
    ctx: LedgerContext, *, as_of: datetime, progress: Callable[[int], None] | None = None
) -> JobsReport:
    report = JobsReport(
        as_of=as_of,
        members=0,
        released=0,
        expired=0,
        expired_points=0,
        reviews=0,
        tier_changes=0,
        birthday_bonuses=0,
        notices=0,
    )
    ctx.session.execute(
        update(MemberStateRow)
        .where(
            MemberStateRow.next_due_at > as_of,
            or_(MemberStateRow.as_of.is_(None), MemberStateRow.as_of < as_of),
        )
        .values(as_of=as_of)
        .execution_options(synchronize_session=False)
    )
    ctx.session.commit()
    last_pk = 0
    while True:
        members = list(
            ctx.session.scalars(
                select(Member)
                .outerjoin(MemberStateRow, MemberStateRow.member_pk == Member.id)
                .where(
                    Member.id > last_pk,
                    Member.enrolled_at <= as_of,
                    # members never loaded, and those with something due by ``as_of``
                    or_(
                        MemberStateRow.member_pk.is_(None),
                        MemberStateRow.next_due_at.is_(None),
                        MemberStateRow.next_due_at <= as_of,
                    ),
                    or_(MemberStateRow.as_of.is_(None), MemberStateRow.as_of < as_of),
                )
                .order_by(Member.id)
                .limit(BATCH)
            )
        )
        if not members:
            return report
        for member in members:
            work = open_member(ctx, member, as_of)
            work.save()
            report.members += 1
            for entry in work.entries:
                if entry.kind == "release":
                    report.released += 1
                elif entry.kind == "expire":
                    report.expired += 1
                    report.expired_points += -entry.points
                elif entry.kind == "birthday":
                    report.birthday_bonuses += 1
            if work.state.last_review_at != work.reviewed_before:
                report.reviews += 1
            report.tier_changes += sum(n.kind == "tier.changed" for n in work.notices)
            report.notices += len(work.notices)
        ctx.session.commit()
        last_pk = members[-1].id
        if progress:
            progress(len(members))
