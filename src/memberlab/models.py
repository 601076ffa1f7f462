"""Every table of the application, imported in one place for migrations and tests."""

from memberlab.core.db import Base
from memberlab.core.models import ApiKey, Tenant
from memberlab.members.models import Member, MemberTag
from memberlab.programs.models import ProgramActivation, ProgramVersion

__all__ = [
    "ApiKey",
    "Base",
    "Member",
    "MemberTag",
    "ProgramActivation",
    "ProgramVersion",
    "Tenant",
]
