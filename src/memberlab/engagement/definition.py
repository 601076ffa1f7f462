"""The engagement as a validated, versioned file: the contract's terms as data.

Like a membership program, an engagement is written as YAML (or JSON) and stored as
immutable versions; each agreed change (a supplementary agreement, 补充协议) makes a new
version and the history is kept. What *happens* (signing, payments, submissions,
acceptances, assessments) is recorded separately as events; everything that follows from
the terms and the events (due dates, overdue instalments, breaches and their penalties) is
computed, never stored (``memberlab.engagement.status``).

The file follows the founding contract's structure: parties (甲方 the client, 乙方 the
provider), service content and term, fee and payment (instalments), breach (penalty clauses,
late payment), disputes (governing law and forum), and the annexes: program design, service
schedule, training plan, team introduction, needs questionnaire, evaluation standards and
proof of performance. See ``samples/membership_consulting.yaml``.

Checks, each naming its field (and line, from a file): codes unique, dates in order (term,
milestones after what they depend on, no cycle), instalments adding up to the fee (by
``instalments.build_schedule``), deliverables and instalments naming known milestones,
standards' weights adding up to 100, unified social credit codes with a valid check
character (GB 32100-2015).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from memberlab.core.errors import FieldError, InvalidInput
from memberlab.engagement.instalments import InstalmentSpec, ScheduleSpec, Trigger, build_schedule
from memberlab.engagement.penalties import LatePaymentTerms, PenaltyClause
from memberlab.programs.schema import LocalText
from memberlab.programs.validation import parse_document, validate_document

Code = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_\-]{0,63}$")]


class InvalidEngagement(InvalidInput):
    key = "engagement.definition.invalid"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


# --- parties ---------------------------------------------------------------------------------

USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_is_valid(code: str) -> bool:
    """统一社会信用代码 (GB 32100-2015): 18 characters, the last a check character."""
    if len(code) != 18 or any(c not in USCC_CHARS for c in code):
        return False
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(code[:17], USCC_WEIGHTS, strict=True))
    return USCC_CHARS[(31 - total % 31) % 31] == code[17]


class Party(_Strict):
    legal_name: Annotated[str, Field(min_length=1, max_length=200)]
    credit_code: Annotated[str, Field(min_length=18, max_length=18)]  # 统一社会信用代码
    signatory: Annotated[str, Field(min_length=1, max_length=100)]
    address: Annotated[str, Field(max_length=300)] | None = None
    contact: Annotated[str, Field(max_length=100)] | None = None
    sme: bool = False  # a small or medium-sized enterprise (保障中小企业款项支付条例)
    public_or_large: bool = False  # 机关、事业单位 or 大型企业 (the SME regulation's payers)


class Parties(_Strict):
    client: Party  # 甲方
    provider: Party  # 乙方


class Term(_Strict):
    start: dt.date
    end: dt.date


# --- schedule --------------------------------------------------------------------------------


class Milestone(_Strict):
    code: Code
    name: LocalText
    planned: dt.date
    baseline: dt.date | None = None  # the plan as first agreed; re-baselined by a change
    depends_on: list[Code] = Field(default_factory=list)


class Annex(StrEnum):
    """The founding contract's annexes (附件)."""

    PROGRAM_DESIGN = "program_design"  # 会员制度设计方案
    SERVICE_SCHEDULE = "service_schedule"  # 服务进度表
    TRAINING_PLAN = "training_plan"  # 培训计划
    TEAM_INTRODUCTION = "team_introduction"  # 项目团队介绍
    NEEDS_QUESTIONNAIRE = "needs_questionnaire"  # 需求调查表
    EVALUATION_STANDARDS = "evaluation_standards"  # 评估标准
    PROOF_OF_PERFORMANCE = "proof_of_performance"  # 履约证明
    REPORT = "report"  # a periodic evaluation report
    OTHER = "other"


class Side(StrEnum):
    PROVIDER = "provider"  # 乙方 delivers: lateness is late delivery
    CLIENT = "client"  # 甲方 provides (data, the questionnaire): lateness is non-cooperation


class Deliverable(_Strict):
    code: Code
    name: LocalText
    annex: Annex = Annex.OTHER
    by: Side = Side.PROVIDER
    milestone: Code | None = None
    due: dt.date
    value: Decimal | None = Field(default=None, gt=0)  # for penalties on its value
    acceptance_days: int = Field(default=10, ge=1, le=365)
    acceptance_unit: str = Field(default="working_days", pattern=r"^(working|calendar)_days$")
    deemed_acceptance: bool = True  # no answer within the window: accepted (视为验收通过)


# --- standards -------------------------------------------------------------------------------


class Comparison(StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"


class Standard(_Strict):
    """One evaluation standard (评估标准): a KPI with its baseline, target and pass rule.

    ``kpi`` names what MemberLab measures from the data (``nps``, ``csat``, ``ces``,
    ``repeat_rate``, ``churn_rate``, ``active_members``, ``case_deadline_met``) or
    ``manual`` for a figure the parties assess themselves.
    """

    code: Code
    name: LocalText
    kpi: Annotated[str, Field(pattern=r"^[a-z_]{1,40}$")]
    definition: LocalText
    unit: Annotated[str, Field(max_length=20)]
    baseline: Decimal | None = None
    target: Decimal
    comparison: Comparison = Comparison.AT_LEAST
    method: LocalText
    source: Annotated[str, Field(max_length=200)]
    period_start: dt.date
    period_end: dt.date
    weight: Decimal = Field(gt=0, le=100)
    max_rounds: int = Field(default=2, ge=0, le=10)  # improvement rounds before a breach

    def passes(self, value: Decimal) -> bool:
        if self.comparison is Comparison.AT_LEAST:
            return value >= self.target
        return value <= self.target


# --- training and team -----------------------------------------------------------------------


class TrainingSession(_Strict):
    code: Code
    title: LocalText
    planned: dt.date
    trainer: Annotated[str, Field(max_length=100)]
    audience: Annotated[str, Field(max_length=200)] | None = None
    hours: Decimal = Field(default=Decimal(2), gt=0, le=100)


class TeamMember(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    role: LocalText
    qualification: Annotated[str, Field(max_length=300)] | None = None
    allocation_percent: int = Field(default=100, ge=1, le=100)


# --- the engagement --------------------------------------------------------------------------


class EngagementDefinition(_Strict):
    contract_number: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
    title: LocalText
    contract_type: Annotated[str, Field(max_length=64)] = "technical_service"  # 技术服务合同
    parties: Parties
    term: Term
    service_content: LocalText
    payment: ScheduleSpec
    penalties: list[PenaltyClause] = Field(default_factory=list)
    late_payment: LatePaymentTerms = LatePaymentTerms()
    governing_law: LocalText
    forum: LocalText
    milestones: list[Milestone] = Field(default_factory=list)
    deliverables: list[Deliverable] = Field(default_factory=list)
    standards: list[Standard] = Field(default_factory=list)
    training: list[TrainingSession] = Field(default_factory=list)
    team: list[TeamMember] = Field(default_factory=list)

    def milestone(self, code: str) -> Milestone | None:
        return next((m for m in self.milestones if m.code == code), None)

    def deliverable(self, code: str) -> Deliverable | None:
        return next((d for d in self.deliverables if d.code == code), None)

    def standard(self, code: str) -> Standard | None:
        return next((s for s in self.standards if s.code == code), None)

    def instalment(self, code: str) -> InstalmentSpec | None:
        return next((i for i in self.payment.instalments if i.code == code), None)


# --- checks ----------------------------------------------------------------------------------


def _error(loc: str, key: str, **params: Any) -> FieldError:
    return FieldError(loc, f"engagement.v.{key}", params)


def _duplicates(items: list[Any], path: str, attribute: str = "code") -> list[FieldError]:
    counts = Counter(getattr(item, attribute) for item in items)
    return [
        _error(f"{path}[{i}].{attribute}", "duplicate", value=getattr(item, attribute))
        for i, item in enumerate(items)
        if counts[getattr(item, attribute)] > 1
    ]


def _semantic_errors(spec: EngagementDefinition) -> list[FieldError]:
    errors: list[FieldError] = []
    for side in ("client", "provider"):
        party: Party = getattr(spec.parties, side)
        if not uscc_is_valid(party.credit_code):
            errors.append(
                _error(f"parties.{side}.credit_code", "credit_code", value=party.credit_code)
            )
    if spec.term.end <= spec.term.start:
        errors.append(_error("term.end", "after", other="term.start", value=str(spec.term.end)))
    for path, items in (
        ("milestones", spec.milestones),
        ("deliverables", spec.deliverables),
        ("standards", spec.standards),
        ("training", spec.training),
        ("penalties", [p for p in spec.penalties if p.code]),
    ):
        errors.extend(_duplicates(items, path))
    errors.extend(_duplicates(spec.payment.instalments, "payment.instalments"))
    errors.extend(_milestone_errors(spec))
    known = {m.code for m in spec.milestones}
    for i, deliverable in enumerate(spec.deliverables):
        if deliverable.milestone is not None and deliverable.milestone not in known:
            errors.append(
                _error(f"deliverables[{i}].milestone", "unknown", value=deliverable.milestone,
                       choices=", ".join(sorted(known)) or "-")
            )  # fmt: skip
        if not spec.term.start <= deliverable.due <= spec.term.end:
            errors.append(
                _error(f"deliverables[{i}].due", "within_term", value=str(deliverable.due))
            )
    for i, instalment in enumerate(spec.payment.instalments):
        if instalment.trigger is Trigger.MILESTONE_ACCEPTED and instalment.milestone not in known:
            errors.append(
                _error(f"payment.instalments[{i}].milestone", "unknown",
                       value=instalment.milestone or "", choices=", ".join(sorted(known)) or "-")
            )  # fmt: skip
    for i, standard in enumerate(spec.standards):
        if standard.period_end < standard.period_start:
            errors.append(
                _error(f"standards[{i}].period_end", "after", other=f"standards[{i}].period_start",
                       value=str(standard.period_end))
            )  # fmt: skip
    if spec.standards:
        total = sum((s.weight for s in spec.standards), Decimal(0))
        if total != 100:
            errors.append(_error("standards", "weights", total=format(total, "f")))
    for i, session in enumerate(spec.training):
        if not spec.term.start <= session.planned <= spec.term.end:
            errors.append(
                _error(f"training[{i}].planned", "within_term", value=str(session.planned))
            )
    try:
        build_schedule(spec.payment)
    except InvalidInput as error:
        errors.extend(
            FieldError(f"payment.{e.loc}" if e.loc else "payment", e.key, e.params)
            for e in error.errors
        )
    return errors


def _milestone_errors(spec: EngagementDefinition) -> list[FieldError]:
    errors: list[FieldError] = []
    by_code = {m.code: (i, m) for i, m in enumerate(spec.milestones)}
    for i, milestone in enumerate(spec.milestones):
        path = f"milestones[{i}]"
        if not spec.term.start <= milestone.planned <= spec.term.end:
            errors.append(_error(f"{path}.planned", "within_term", value=str(milestone.planned)))
        for dependency in milestone.depends_on:
            if dependency not in by_code:
                errors.append(
                    _error(f"{path}.depends_on", "unknown", value=dependency,
                           choices=", ".join(sorted(by_code)) or "-")
                )  # fmt: skip
            elif by_code[dependency][1].planned > milestone.planned:
                errors.append(
                    _error(f"{path}.planned", "before_dependency", value=str(milestone.planned),
                           other=dependency, other_date=str(by_code[dependency][1].planned))
                )  # fmt: skip
    # a cycle can hide behind equal dates: walk the graph
    state: dict[str, int] = {}

    def visit(code: str, trail: list[str]) -> list[str] | None:
        state[code] = 1
        for dependency in by_code[code][1].depends_on:
            if dependency not in by_code:
                continue
            if state.get(dependency) == 1:
                return [*trail, code, dependency]
            if dependency not in state:
                found = visit(dependency, [*trail, code])
                if found:
                    return found
        state[code] = 2
        return None

    for code in by_code:
        if code not in state:
            cycle = visit(code, [])
            if cycle:
                index = by_code[cycle[0]][0]
                errors.append(
                    _error(f"milestones[{index}].depends_on", "cycle", path=" -> ".join(cycle))
                )
                break
    return errors


def validate_definition(data: Any, node: Any = None) -> EngagementDefinition:
    """Check parsed data; ``InvalidEngagement`` lists every problem (with lines from a file)."""
    return validate_document(
        data, node, model=EngagementDefinition, semantic=_semantic_errors,
        error=InvalidEngagement, keys="engagement.v",
    )  # fmt: skip


def parse_definition_text(text: str) -> EngagementDefinition:
    return parse_document(
        text, model=EngagementDefinition, semantic=_semantic_errors, error=InvalidEngagement,
        keys="engagement.v",
    )  # fmt: skip


def canonical_json(spec: EngagementDefinition) -> str:
    """The same terms always give the same text (and hash)."""
    return json.dumps(
        spec.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )


def content_hash(spec: EngagementDefinition) -> str:
    return hashlib.sha256(canonical_json(spec).encode()).hexdigest()
