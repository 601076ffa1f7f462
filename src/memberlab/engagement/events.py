"""What happens on an engagement, as typed events.

Each event has a kind, the day it happened and a payload whose shape depends on the kind.
Events are facts: they are recorded, never edited (a wrong one is answered by a later one,
a rejection after a submission, a correcting payment). Everything else (due dates, states,
breaches) is computed from the terms and the events in ``status.py``.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from memberlab.core.errors import InvalidInput
from memberlab.core.validation import field_errors

Text = Annotated[str, Field(min_length=1, max_length=4000)]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Code = Annotated[str, Field(min_length=1, max_length=64)]


class EventKind(StrEnum):
    SIGNED = "signed"  # the contract is signed: the term's clock and the first instalment
    INVOICE = "invoice"  # the provider's invoice for an instalment
    PAYMENT = "payment"
    SUBMISSION = "submission"  # a deliverable handed over for acceptance
    ACCEPTANCE = "acceptance"
    REJECTION = "rejection"  # with reasons: the deliverable must be submitted again
    MILESTONE_ACCEPTED = "milestone_accepted"
    ASSESSMENT = "assessment"  # a standard measured
    CHANGE_REQUEST = "change_request"
    CHANGE_APPROVED = "change_approved"
    CHANGE_REJECTED = "change_rejected"
    TRAINING_HELD = "training_held"
    TEAM_APPROVED = "team_approved"  # the client approves a team member
    QUESTIONNAIRE = "questionnaire"  # the needs questionnaire's answers
    COMPLETED = "completed"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Signed(_Payload):
    pass


class Invoice(_Payload):
    instalment: Code
    number: Annotated[str, Field(max_length=64)] | None = None


class PaymentMade(_Payload):
    amount: Decimal = Field(gt=0, max_digits=14, decimal_places=2)
    instalment: Code | None = None
    reference: Annotated[str, Field(max_length=100)] | None = None


class Submission(_Payload):
    deliverable: Code
    note: Text | None = None


class Acceptance(_Payload):
    deliverable: Code
    accepted_by: Name


class Rejection(_Payload):
    deliverable: Code
    reasons: Text
    rejected_by: Name


class MilestoneAccepted(_Payload):
    milestone: Code
    accepted_by: Name


class Assessment(_Payload):
    standard: Code
    value: Decimal = Field(max_digits=14, decimal_places=4)
    measured_by: Name = "MemberLab"
    note: Text | None = None


class ChangeRequest(_Payload):
    code: Code
    scope: Text
    fee_change: Decimal = Field(default=Decimal(0), max_digits=14, decimal_places=2)
    schedule_impact: Text | None = None
    requested_by: Name


class ChangeDecision(_Payload):
    code: Code
    decided_by: Name
    note: Text | None = None


class TrainingHeld(_Payload):
    session: Code
    trainer: Name
    attendees: list[Name] = Field(min_length=1, max_length=2000)
    signed_off: bool = False  # the attendance sheet signed by the client


class TeamApproved(_Payload):
    name: Name
    approved_by: Name


class Questionnaire(_Payload):
    """The needs questionnaire's answers (by question id). Through a link or an import they
    are checked against the questionnaire first (``questionnaire.check_answers``); the
    deliverable they hand in is named, or is every deliverable of the needs-questionnaire
    annex."""

    answers: dict[Annotated[str, Field(max_length=100)], Any] = Field(min_length=1)
    answered_by: Name
    deliverable: Code | None = None
    source: Literal["link", "import", "manual"] | None = None
    questionnaire: Annotated[str, Field(max_length=80)] | None = None  # <code>@<version>
    language: Literal["zh-CN", "en"] | None = None


class Completed(_Payload):
    pass


PAYLOADS: dict[EventKind, type[_Payload]] = {
    EventKind.SIGNED: Signed,
    EventKind.INVOICE: Invoice,
    EventKind.PAYMENT: PaymentMade,
    EventKind.SUBMISSION: Submission,
    EventKind.ACCEPTANCE: Acceptance,
    EventKind.REJECTION: Rejection,
    EventKind.MILESTONE_ACCEPTED: MilestoneAccepted,
    EventKind.ASSESSMENT: Assessment,
    EventKind.CHANGE_REQUEST: ChangeRequest,
    EventKind.CHANGE_APPROVED: ChangeDecision,
    EventKind.CHANGE_REJECTED: ChangeDecision,
    EventKind.TRAINING_HELD: TrainingHeld,
    EventKind.TEAM_APPROVED: TeamApproved,
    EventKind.QUESTIONNAIRE: Questionnaire,
    EventKind.COMPLETED: Completed,
}


class Event(BaseModel):
    """One event as the computations read it."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    on: dt.date
    payload: Any
    seq: int = 0  # the order of recording, for events of the same day


def parse_payload(kind: EventKind, data: dict[str, Any]) -> _Payload:
    """The payload of ``kind``, checked; fields are named ``payload.<field>``."""
    try:
        return PAYLOADS[kind].model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc.errors(include_url=False), model=PAYLOADS[kind])
        raise InvalidInput(
            errors=[type(e)(f"payload.{e.loc}" if e.loc else "payload", e.key, e.params)
                    for e in errors]
        ) from None  # fmt: skip
