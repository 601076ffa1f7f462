"""Concurrent writes on PostgreSQL: no interleaving overspends, double-spends or oversells.

These tests need real commits from many connections at once, so they run on their own
engine in a schema of their own (created, migrated and dropped here), not inside the
rolled-back transaction of the other tests. Each worker thread has its own session and
unit of work, as each API request does; a barrier lets them all start together.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from conftest import BACKENDS, FIXED_NOW, POSTGRES_URL, TEST_SECRET
from memberlab.core import migrate, tenants
from memberlab.core.db import Database, create_db_engine
from memberlab.core.errors import MemberLabError
from memberlab.core.pii import PersonalDataVault
from memberlab.datasets.demo import sample_program_text
from memberlab.ledger import service
from memberlab.ledger.jobs import run_jobs
from memberlab.ledger.models import LedgerEntry, PointsLot, Posting
from memberlab.ledger.models import MemberState as MemberStateRow
from memberlab.ledger.schemas import AdjustmentCreate, LineIn, PurchaseCreate
from memberlab.members import service as member_service
from memberlab.members.models import Member
from memberlab.members.schemas import MemberCreate
from memberlab.programs import rules
from memberlab.programs import service as program_service
from memberlab.rewards import service as rewards
from memberlab.rewards.models import Redemption, RewardStock
from memberlab.rewards.schemas import RedemptionCreate

THREADS = 16
VAULT = PersonalDataVault(TEST_SECRET)
TEAHOUSE = sample_program_text("teahouse")


@pytest.fixture(scope="module", params=BACKENDS)
def committing(request: pytest.FixtureRequest) -> Iterator[Database]:
    """A ``Database`` whose sessions really commit, on a schema of this module's own."""
    if request.param == "sqlite":
        pytest.skip(
            "PostgreSQL only: SQLite takes the write lock at BEGIN IMMEDIATE, so its writers "
            "never interleave; the row locks under test here are PostgreSQL's"
        )
    schema = f"ml_concurrency_{secrets.token_hex(4)}"
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine: Engine = create_db_engine(
        POSTGRES_URL,
        connect_args={"options": f"-c search_path={schema}"},
        pool_size=THREADS + 4,
        max_overflow=THREADS,
    )
    try:
        migrate.upgrade(engine)
        yield Database(engine)
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- set-up ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shop:
    database: Database
    tenant_id: int

    def context(self, session: Any) -> service.LedgerContext:
        return service.LedgerContext(
            session=session, tenant_id=self.tenant_id, now=FIXED_NOW, vault=VAULT, actor="test"
        )

    def member(self, member_id: str, points: int) -> None:
        """A member with ``points`` available: the 200 welcome points and an adjustment."""
        with self.database.session(tenant_id=self.tenant_id) as session:
            member_service.enrol(
                session,
                MemberCreate(member_id=member_id, enrolled_at=FIXED_NOW),
                ctx=member_service.MemberContext(vault=VAULT),
                now=FIXED_NOW,
            )
        with self.database.session(tenant_id=self.tenant_id) as session:
            service.adjust(
                self.context(session),
                member_id,
                AdjustmentCreate(points=points - 200, reason="test points"),
                f"grant-{member_id}",
            )
        assert self.balance(member_id) == points

    def redeem(self, member_id: str, reward: str, key: str) -> dict[str, Any]:
        with self.database.session(tenant_id=self.tenant_id) as session:
            answer = rewards.redeem(
                self.context(session), member_id, RedemptionCreate(reward=reward), key
            )
        return {"status": answer.status_code, "replayed": answer.replayed, **answer.body}

    @staticmethod
    def order(member_id: str, order_id: str, amount: str) -> PurchaseCreate:
        return PurchaseCreate(
            member_id=member_id,
            order_id=order_id,
            occurred_at=FIXED_NOW,
            channel="store",
            lines=[LineIn(sku="tea", category="tea", amount=Decimal(amount))],
        )

    def purchase(self, member_id: str, order_id: str, amount: str) -> dict[str, Any]:
        with self.database.session(tenant_id=self.tenant_id) as session:
            answer = service.post_purchase(
                self.context(session), self.order(member_id, order_id, amount)
            )
        return {"status": answer.status_code, "replayed": answer.replayed, **answer.body}

    def balance(self, member_id: str) -> int:
        with self.database.session(tenant_id=self.tenant_id) as session:
            row = session.scalar(
                select(MemberStateRow)
                .join(Member, Member.id == MemberStateRow.member_pk)
                .where(Member.member_id == member_id)
            )
            return row.available + row.pending

    def posted_balance(self, member_id: str) -> int:
        """The member's balance from the postings alone."""
        with self.database.session(tenant_id=self.tenant_id) as session:
            pk = session.scalar(select(Member.id).where(Member.member_id == member_id))
            total = 0
            for source, destination, amount in session.execute(
                select(Posting.source, Posting.destination, Posting.amount).where(
                    Posting.member_pk == pk
                )
            ):
                into = destination in rules.MEMBER_ACCOUNTS
                if into != (source in rules.MEMBER_ACCOUNTS):
                    total += amount if into else -amount
            return total

    def count(self, model: Any, *where: Any) -> int:
        with self.database.session(tenant_id=self.tenant_id) as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def open_shop(database: Database, program_text: str = TEAHOUSE) -> Shop:
    slug = f"c{secrets.token_hex(4)}"
    with database.session(platform=True) as session:
        tenant = tenants.create_tenant(
            session, slug=slug, name_zh="并发", name_en="Concurrency", now=FIXED_NOW
        )
        tenant_id = tenant.id
    with database.session(tenant_id=tenant_id) as session:
        loaded = program_service.load(
            session, source=program_text, created_by="test", now=FIXED_NOW
        )
        program_service.activate(
            session,
            version_id=loaded.version.id,
            effective_from=FIXED_NOW.replace(year=2025),
            activated_by="test",
            now=FIXED_NOW,
        )
    return Shop(database, tenant_id)


def all_at_once(work: Callable[[int], Any], threads: int = THREADS) -> list[Any]:
    """Run ``work(i)`` in ``threads`` threads released together; each result or error."""
    barrier = threading.Barrier(threads)
    results: list[Any] = [None] * threads

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # the test inspects every outcome
            results[i] = error

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in pool), "a worker hung"
    return results


def refusals(results: list[Any]) -> Counter[str]:
    unexpected = [r for r in results if isinstance(r, Exception)]
    assert all(isinstance(r, MemberLabError) for r in unexpected), unexpected
    return Counter(r.key for r in unexpected)


# --- the tests ---------------------------------------------------------------------------------


def test_concurrent_redemptions_spend_exactly_what_the_balance_allows(
    committing: Database,
) -> None:
    shop = open_shop(committing)
    points, cost = 3700, 500  # the 5-yuan coupon costs 500 points
    shop.member("C-1", points)

    results = all_at_once(lambda i: shop.redeem("C-1", "coupon_5", key=f"coupon-{i}"))

    successes = [r for r in results if isinstance(r, dict)]
    assert len(successes) == points // cost == 7
    assert refusals(results) == {"ledger.insufficient_points": THREADS - 7}
    assert sorted(r["available"] for r in successes) == [points - cost * n for n in range(7, 0, -1)]
    assert shop.balance("C-1") == shop.posted_balance("C-1") == points - 7 * cost
    assert shop.count(LedgerEntry, LedgerEntry.kind == "redemption") == 7
    assert shop.count(Redemption) == 7


def test_the_same_idempotency_key_from_many_threads_makes_one_entry(
    committing: Database,
) -> None:
    shop = open_shop(committing)
    shop.member("C-2", 5000)

    results = all_at_once(lambda i: shop.redeem("C-2", "coupon_5", key="one-key"))

    assert refusals(results) == {}
    assert [r["replayed"] for r in results].count(False) == 1
    bodies = [{k: v for k, v in r.items() if k != "replayed"} for r in results]
    assert all(body == bodies[0] for body in bodies)
    assert shop.count(LedgerEntry, LedgerEntry.kind == "redemption") == 1
    assert shop.count(Redemption) == 1
    assert shop.balance("C-2") == shop.posted_balance("C-2") == 4500


def test_a_limited_reward_is_never_oversold(committing: Database) -> None:
    # the teahouse sample with only 5 tumblers; 16 members with points for one each
    shop = open_shop(committing, TEAHOUSE.replace("stock: 500", "stock: 5"))
    for i in range(THREADS):
        shop.member(f"S-{i}", 7000)
    # the first of the 5 goes alone: it creates the reward's stock row, and two first
    # redemptions at once collide on that insert (test_the_first_redemptions_..., below)
    shop.redeem("S-0", "tumbler", key="first")

    results = all_at_once(
        lambda i: shop.redeem(f"S-{i + 1}", "tumbler", key=f"tumbler-{i}"), THREADS - 1
    )

    successes = [r for r in results if isinstance(r, dict)]
    assert len(successes) == 4
    assert refusals(results) == {"rewards.out_of_stock": THREADS - 1 - 4}
    assert shop.count(Redemption) == 5
    with committing.session(tenant_id=shop.tenant_id) as session:
        assert session.scalar(select(RewardStock.issued)) == 5
    for i in range(THREADS):
        assert shop.balance(f"S-{i}") == shop.posted_balance(f"S-{i}")


def test_concurrent_purchases_and_redemptions_of_one_member_lose_no_posting(
    committing: Database,
) -> None:
    shop = open_shop(committing)
    shop.member("C-3", 5200)

    def work(i: int) -> Any:
        if i % 2:
            return shop.redeem("C-3", "coupon_5", key=f"mixed-{i}")
        return shop.purchase("C-3", f"order-{i}", "88.00")

    results = all_at_once(work)

    assert refusals(results) == {}
    # 5200 - 8 x 500 redeemed; 8 x 88 points earned, pending for 3 days
    assert shop.balance("C-3") == shop.posted_balance("C-3") == 5200 - 8 * 500 + 8 * 88
    assert shop.count(LedgerEntry, LedgerEntry.kind == "purchase") == 8
    assert shop.count(LedgerEntry, LedgerEntry.kind == "redemption") == 8
    with committing.session(tenant_id=shop.tenant_id) as session:
        remaining = session.scalar(select(func.sum(PointsLot.remaining)))
        debt = session.scalar(select(func.sum(MemberStateRow.debt)))
    assert remaining - debt == shop.balance("C-3")


def second_while_first_is_open(
    shop: Shop, first: Callable[[service.LedgerContext], Any], second: Callable[[], Any]
) -> Any:
    """Run ``first`` up to its commit and hold it there; run ``second`` in another thread
    until it waits for a lock ``first`` holds; let ``first`` commit; return what ``second``
    gave. (An idempotent write commits itself: ``replay_or_run``.)"""
    outcome: list[Any] = []

    def attempt() -> None:
        try:
            outcome.append(second())
        except (MemberLabError, IntegrityError) as error:
            outcome.append(error)

    worker = threading.Thread(target=attempt)

    def hold(session: Session) -> None:
        session.execute(text("SELECT 1"))  # the writes sent to go with the COMMIT go now
        worker.start()
        wait_for_a_blocked_writer(shop.database)

    session = shop.database.new_session(tenant_id=shop.tenant_id)
    event.listen(session, "before_commit", hold, once=True)
    try:
        first(shop.context(session))
        session.commit()
        worker.join(timeout=60)
    finally:
        session.close()
    [result] = outcome
    return result


def test_the_first_redemptions_of_a_reward_at_once_both_succeed(committing: Database) -> None:
    shop = open_shop(committing)
    shop.member("F-1", 7000)
    shop.member("F-2", 7000)

    # F-1's redemption inserts the tumbler's stock row; F-2's must wait, then go through
    second = second_while_first_is_open(
        shop,
        lambda ctx: rewards.redeem(ctx, "F-1", RedemptionCreate(reward="tumbler"), "f-1"),
        lambda: shop.redeem("F-2", "tumbler", "f-2"),
    )

    assert isinstance(second, dict), f"the second redemption failed: {second!r}"
    assert shop.count(Redemption) == 2


def test_two_first_purchases_of_a_new_customer_at_once_both_succeed(
    committing: Database,
) -> None:
    # the teahouse enrols a customer on the first purchase
    shop = open_shop(committing)

    second = second_while_first_is_open(
        shop,
        lambda ctx: service.post_purchase(ctx, shop.order("NEW-1", "first-1", "30.00")),
        lambda: shop.purchase("NEW-1", "first-2", "30.00"),
    )

    assert isinstance(second, dict), f"the second purchase failed: {second!r}"
    assert second["enrolled"] is False
    assert shop.count(Member) == 1
    assert shop.balance("NEW-1") == shop.posted_balance("NEW-1") == 200 + 30 + 30


def test_a_purchase_that_waited_for_another_writer_reads_what_that_writer_wrote(
    committing: Database,
) -> None:
    # a purchase reads its member in the statement that takes the lock; having waited for
    # the adjustment's lock, it reads the member again, with the adjustment's entry and lot
    shop = open_shop(committing)
    shop.member("W-1", 1000)

    second = second_while_first_is_open(
        shop,
        lambda ctx: service.adjust(
            ctx, "W-1", AdjustmentCreate(points=500, reason="goodwill"), "goodwill-1"
        ),
        lambda: shop.purchase("W-1", "after-1", "30.00"),
    )

    assert isinstance(second, dict), f"the purchase failed: {second!r}"
    assert second["balances"]["available"] == 1500  # the 30 earned are pending
    assert shop.balance("W-1") == shop.posted_balance("W-1") == 1000 + 500 + 30


def test_a_jobs_run_leaves_its_members_to_live_writes_batch_by_batch(
    committing: Database,
) -> None:
    shop = open_shop(committing)
    shop.member("W-2", 1000)  # nothing due for long: moved on by the run's first UPDATE
    shop.purchase("D-2", "due-1", "30.00")  # enrols D-2; its 30 points are released in 3 days
    free: list[bool] = []

    def after_batch(_members: int) -> None:
        # what a live write of W-2 would lock first, from another connection, without waiting
        with committing.engine.connect() as other:
            locked = other.execute(
                text(
                    "SELECT s.member_pk FROM member_states s JOIN members m ON m.id = s.member_pk"
                    " WHERE m.tenant_id = :tenant AND m.member_id = 'W-2' FOR UPDATE OF s NOWAIT"
                ),
                {"tenant": shop.tenant_id},
            ).first()
            free.append(locked is not None)
            other.rollback()

    with committing.session(tenant_id=shop.tenant_id) as session:
        report = run_jobs(
            shop.context(session), as_of=FIXED_NOW + timedelta(days=4), progress=after_batch
        )

    assert report.released == 1  # D-2's points, in the one batch
    assert free == [True]  # W-2 was not held until the run's end


def wait_for_a_blocked_writer(database: Database, timeout: float = 30.0) -> None:
    """Until another connection waits on a lock (a row some transaction holds)."""
    deadline = time.monotonic() + timeout
    with database.engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("no writer ever waited for the lock")


def test_concurrent_first_purchases_enrol_a_new_customer_once(committing: Database) -> None:
    # the teahouse enrols a customer on the first purchase: the first 8 arrive together
    shop = open_shop(committing)

    results = all_at_once(lambda i: shop.purchase("NEW-2", f"first-{i}", "30.00"), 8)

    assert refusals(results) == {}
    assert shop.count(Member) == 1
    assert [r["enrolled"] for r in results].count(True) == 1
    assert shop.balance("NEW-2") == shop.posted_balance("NEW-2") == 200 + 8 * 30
