"""Stored programs (``memberlab.programs.service``): versions, activations, diffs.

A loaded file becomes an immutable version, numbered per program code and addressed by its
normalised content; an activation makes a version live from a date, and the live version
at any moment is a pure function of the activation history.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select, text

from factories import make_tenant
from memberlab.core.app_state import AppState
from memberlab.core.errors import InvalidInput
from memberlab.datasets.demo import sample_program_text
from memberlab.programs import service
from memberlab.programs.models import ProgramActivation, ProgramVersion
from memberlab.programs.validation import InvalidProgram, canonical_json, parse_program_text

TEAHOUSE = sample_program_text("teahouse")
# The same program, with the Golden Bud threshold raised, the daily cap raised and a tier
# inserted between Green Leaf and Golden Bud.
TEAHOUSE_V2 = (
    TEAHOUSE.replace(
        "threshold: 2500\n    retention_threshold: 2000",
        "threshold: 3000\n    retention_threshold: 2000",
    )
    .replace("per_day: 2000", "per_day: 3000")
    .replace(
        "  - code: golden_bud\n",
        "  - code: silver_leaf\n"
        "    name: {zh: 银叶会员, en: Silver Leaf}\n"
        "    threshold: 1500\n"
        "    retention_threshold: 1200\n"
        "    earn_multiplier: 1.3\n"
        "\n"
        "  - code: golden_bud\n",
    )
)
JAN = datetime(2026, 1, 1, tzinfo=UTC)
JUL = datetime(2026, 7, 1, tzinfo=UTC)


class Programs:
    """One tenant's programs, driven through the service as the API and CLI drive it."""

    def __init__(self, state: AppState, tenant_id: int) -> None:
        self.state = state
        self.tenant_id = tenant_id

    def session(self) -> Any:
        return self.state.database.session(tenant_id=self.tenant_id)

    def load(self, source: str) -> service.LoadResult:
        with self.session() as session:
            return service.load(session, source=source, created_by="test", now=self.state.clock())

    def activate(self, version_id: int, effective_from: datetime) -> ProgramActivation:
        with self.session() as session:
            return service.activate(
                session,
                version_id=version_id,
                effective_from=effective_from,
                activated_by="test",
                now=self.state.clock(),
            )

    def active(self, as_of: datetime) -> int:
        """The id of the version in force at ``as_of``."""
        with self.session() as session:
            return service.active_version(session, as_of=as_of).id

    def find(self, ref: str) -> int:
        with self.session() as session:
            return service.find_version(session, ref).id

    def counts(self) -> tuple[int, int]:
        with self.session() as session:
            return (
                session.scalar(select(func.count()).select_from(ProgramVersion)) or 0,
                session.scalar(select(func.count()).select_from(ProgramActivation)) or 0,
            )

    def raw_version(self, version_id: int) -> dict[str, Any]:
        row = self.state.database.bind.execute(
            text("SELECT * FROM program_versions WHERE id = :id"), {"id": version_id}
        ).one()
        return dict(row._mapping)


@pytest.fixture
def programs(state: AppState) -> Programs:
    return Programs(state, make_tenant(state).tenant.id)


# --- loading --------------------------------------------------------------------------------------


def test_loading_a_file_stores_version_1(programs: Programs, state: AppState) -> None:
    result = programs.load(TEAHOUSE)

    version = result.version
    assert result.created
    assert (version.code, version.version) == ("teahouse", 1)
    assert version.source == TEAHOUSE
    assert version.definition == parse_program_text(TEAHOUSE).model_dump(mode="json")
    expected_sha = hashlib.sha256(canonical_json(parse_program_text(TEAHOUSE)).encode())
    assert version.sha256 == expected_sha.hexdigest()
    assert (version.created_at, version.created_by) == (state.clock(), "test")


def test_loading_the_same_content_again_returns_the_same_version(programs: Programs) -> None:
    first = programs.load(TEAHOUSE)

    again = programs.load(TEAHOUSE)

    assert not again.created
    assert again.version.id == first.version.id
    assert programs.counts() == (1, 0)


@pytest.mark.parametrize(
    "variant",
    [
        pytest.param(
            "\n".join(line for line in TEAHOUSE.splitlines() if not line.lstrip().startswith("#")),
            id="comments removed",
        ),
        pytest.param(
            json.dumps(yaml.safe_load(TEAHOUSE), ensure_ascii=False, default=str), id="as JSON"
        ),
    ],
)
def test_the_same_program_written_differently_is_the_same_version(
    programs: Programs, variant: str
) -> None:
    first = programs.load(TEAHOUSE)

    again = programs.load(variant)

    assert variant != TEAHOUSE
    assert not again.created
    assert again.version.id == first.version.id


def test_a_changed_file_makes_the_next_version(programs: Programs) -> None:
    first = programs.load(TEAHOUSE)

    second = programs.load(TEAHOUSE_V2)
    back = programs.load(TEAHOUSE)

    assert second.created
    assert (second.version.code, second.version.version) == ("teahouse", 2)
    assert second.version.sha256 != first.version.sha256
    assert not back.created
    assert back.version.id == first.version.id  # content-addressed: no version 3
    assert programs.counts() == (2, 0)


def test_each_program_code_is_numbered_on_its_own(programs: Programs) -> None:
    programs.load(TEAHOUSE)
    programs.load(TEAHOUSE_V2)

    store = programs.load(sample_program_text("department_store")).version

    assert (store.code, store.version) == ("department_store", 1)


def test_a_stored_version_never_changes(programs: Programs, state: AppState) -> None:
    first = programs.load(TEAHOUSE).version.id
    before = programs.raw_version(first)

    second = programs.load(TEAHOUSE_V2).version.id
    programs.activate(first, JAN)
    programs.activate(second, JUL)
    programs.load(TEAHOUSE)

    assert programs.raw_version(first) == before


def test_a_broken_file_stores_nothing(programs: Programs) -> None:
    with pytest.raises(InvalidProgram) as caught:
        programs.load(TEAHOUSE.replace("threshold: 800", "threshold: lots"))

    assert [e.render("en") for e in caught.value.errors] == [
        "tiers[1].threshold: must be a number (got lots)"
    ]
    assert programs.counts() == (0, 0)


def test_versions_of_another_tenant_are_invisible(programs: Programs, state: AppState) -> None:
    theirs = Programs(state, make_tenant(state, slug="other").tenant.id)
    their_version = theirs.load(TEAHOUSE).version.id

    mine = programs.load(TEAHOUSE)

    assert mine.created  # the same content is a new version for this tenant
    assert mine.version.version == 1
    with pytest.raises(service.ProgramVersionNotFound):
        programs.find(str(their_version))
    with pytest.raises(service.ProgramVersionNotFound):
        programs.activate(their_version, JAN)


# --- finding versions -----------------------------------------------------------------------------


def test_a_version_is_found_by_id_or_by_code_and_number(programs: Programs) -> None:
    first = programs.load(TEAHOUSE).version.id
    second = programs.load(TEAHOUSE_V2).version.id

    assert programs.find(str(first)) == first
    assert programs.find("teahouse@1") == first
    assert programs.find("teahouse@2") == second
    assert programs.find("teahouse") == second  # the latest


@pytest.mark.parametrize("ref", ["teahouse@3", "teahouse@x", "coffee", "99999999"])
def test_an_unknown_version_is_not_found(programs: Programs, ref: str) -> None:
    programs.load(TEAHOUSE)

    with pytest.raises(service.ProgramVersionNotFound) as caught:
        programs.find(ref)

    assert caught.value.status == 404
    assert caught.value.message("en") == f"No program version {ref}."
    assert caught.value.message("zh-CN") == f"会员计划版本 {ref} 不存在。"


# --- activation -----------------------------------------------------------------------------------


def test_no_program_is_active_before_the_first_activation(programs: Programs) -> None:
    first = programs.load(TEAHOUSE).version.id
    programs.activate(first, JUL)

    with pytest.raises(service.NoActiveProgram) as caught:
        programs.active(datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC))

    assert caught.value.message("en") == "No program is active for this tenant yet."
    assert caught.value.message("zh-CN") == "该租户尚未启用任何会员计划。"


def test_the_active_version_follows_the_effective_dates(programs: Programs) -> None:
    first = programs.load(TEAHOUSE).version.id
    second = programs.load(TEAHOUSE_V2).version.id
    programs.activate(first, JAN)
    assert programs.active(datetime(2026, 12, 31, tzinfo=UTC)) == first

    programs.activate(second, JUL)

    assert programs.active(JAN) == first
    assert programs.active(datetime(2026, 6, 30, 23, 59, 59, tzinfo=UTC)) == first
    assert programs.active(JUL) == second
    assert programs.active(datetime(2027, 1, 1, tzinfo=UTC)) == second


def test_an_activation_is_read_as_an_instant_whatever_its_zone(programs: Programs) -> None:
    first = programs.load(TEAHOUSE).version.id
    second = programs.load(TEAHOUSE_V2).version.id
    programs.activate(first, JAN)
    # Midnight of 1 July in Shanghai is 16:00 on 30 June in UTC.
    programs.activate(second, datetime.fromisoformat("2026-07-01T00:00:00+08:00"))

    assert programs.active(datetime(2026, 6, 30, 15, 59, tzinfo=UTC)) == first
    assert programs.active(datetime(2026, 6, 30, 16, 0, tzinfo=UTC)) == second


def test_an_activation_earlier_than_the_one_in_force_is_refused(programs: Programs) -> None:
    first = programs.load(TEAHOUSE).version.id
    second = programs.load(TEAHOUSE_V2).version.id
    programs.activate(second, JUL)

    with pytest.raises(InvalidInput) as caught:
        programs.activate(first, JAN)

    assert caught.value.status == 422
    assert caught.value.message("en") == (
        "The effective date 2026-01-01T00:00:00+00:00 is before the active version's "
        "(2026-07-01T00:00:00+00:00)."
    )
    assert caught.value.message("zh-CN") == (
        "生效日期 2026-01-01T00:00:00+00:00 早于当前启用版本的生效日期"
        "（2026-07-01T00:00:00+00:00）。"
    )
    assert programs.counts() == (2, 1)
    assert programs.active(JUL) == second


def test_a_later_activation_on_the_same_date_wins(programs: Programs) -> None:
    first = programs.load(TEAHOUSE).version.id
    second = programs.load(TEAHOUSE_V2).version.id
    programs.activate(first, JUL)
    programs.activate(second, JUL)
    programs.activate(first, JUL)

    assert programs.active(JUL) == first
    with programs.session() as session:
        history = [(a.version_id, a.effective_from) for a in service.activations(session)]
    assert history == [(first, JUL), (second, JUL), (first, JUL)]


def test_activating_an_unknown_version_is_not_found(programs: Programs) -> None:
    with pytest.raises(service.ProgramVersionNotFound):
        programs.activate(99999999, JAN)

    assert programs.counts() == (0, 0)


# --- diff -----------------------------------------------------------------------------------------


def definitions(programs: Programs) -> tuple[dict[str, Any], dict[str, Any]]:
    first = programs.load(TEAHOUSE).version
    second = programs.load(TEAHOUSE_V2).version
    return first.definition, second.definition


def test_diff_lists_the_changed_paths_matching_tiers_by_code(programs: Programs) -> None:
    before, after = definitions(programs)

    changes = service.diff(before, after)

    assert [c.path for c in changes] == [
        "earning.caps.per_day",
        "tiers[golden_bud].threshold",
        "tiers[silver_leaf]",
    ]
    per_day, threshold, added = changes
    assert (per_day.before, per_day.after) == (2000, 3000)
    assert (threshold.before, threshold.after) == ("2500", "3000")
    assert added.before is None
    assert added.after["name"] == {"zh": "银叶会员", "en": "Silver Leaf"}


def test_diff_the_other_way_round_swaps_before_and_after(programs: Programs) -> None:
    before, after = definitions(programs)

    forward = service.diff(before, after)
    backward = service.diff(after, before)

    # (in the order of the first version's tiers: here Silver Leaf comes before Golden Bud)
    assert [c.path for c in backward] == [
        "earning.caps.per_day",
        "tiers[silver_leaf]",
        "tiers[golden_bud].threshold",
    ]
    assert {c.path: (c.before, c.after) for c in backward} == {
        c.path: (c.after, c.before) for c in forward
    }


def test_diff_of_a_version_with_itself_is_empty(programs: Programs) -> None:
    before, _ = definitions(programs)

    assert service.diff(before, before) == []


def test_diff_matches_benefits_by_code_too(programs: Programs) -> None:
    changed = TEAHOUSE.replace(
        "        quantity_per_year: 52\n", "        quantity_per_year: 104\n"
    )
    before = programs.load(TEAHOUSE).version.definition
    after = programs.load(changed).version.definition

    assert [(c.path, c.before, c.after) for c in service.diff(before, after)] == [
        ("tiers[imperial].benefits[free_delivery].quantity_per_year", 52, 104)
    ]
