"""Every table of the application, imported in one place for migrations and tests."""

from memberlab.core.db import Base
from memberlab.core.models import ApiKey, Tenant
from memberlab.engagement.models import (
    Engagement,
    EngagementEvent,
    EngagementVersion,
    EvidenceItem,
)
from memberlab.experience.models import (
    CaseNote,
    ExperienceSettings,
    FollowUpCase,
    JourneyStage,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    Touchpoint,
)
from memberlab.ledger.models import (
    IdempotencyRecord,
    ImportRun,
    LedgerEntry,
    MemberState,
    Order,
    OrderReturn,
    PointsLot,
    Posting,
    TierChange,
)
from memberlab.members.models import Member, MemberTag
from memberlab.programs.models import ProgramActivation, ProgramVersion
from memberlab.retail.models import Product, Store
from memberlab.rewards.models import Coupon, Redemption, RewardStock
from memberlab.webhooks.models import OutboxEvent, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Base",
    "CaseNote",
    "Coupon",
    "Engagement",
    "EngagementEvent",
    "EngagementVersion",
    "EvidenceItem",
    "ExperienceSettings",
    "FollowUpCase",
    "IdempotencyRecord",
    "ImportRun",
    "JourneyStage",
    "LedgerEntry",
    "Member",
    "MemberState",
    "MemberTag",
    "Order",
    "OrderReturn",
    "OutboxEvent",
    "PointsLot",
    "Posting",
    "Product",
    "ProgramActivation",
    "ProgramVersion",
    "Redemption",
    "RewardStock",
    "Store",
    "Survey",
    "SurveyInvitation",
    "SurveyResponse",
    "Tenant",
    "TierChange",
    "Touchpoint",
    "WebhookEndpoint",
]
