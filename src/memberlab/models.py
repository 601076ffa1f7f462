"""Every table of the application, imported in one place for migrations and tests."""

from memberlab.core.db import Base
from memberlab.core.models import ApiKey, Tenant
from memberlab.experience.models import SurveyResponse
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
    "Coupon",
    "IdempotencyRecord",
    "ImportRun",
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
    "SurveyResponse",
    "Tenant",
    "TierChange",
    "WebhookEndpoint",
]
