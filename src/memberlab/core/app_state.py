"""What the edges (API, CLI, jobs) hand to services: the store, the vault, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from memberlab.core.db import Database, create_db_engine, utcnow
from memberlab.core.pii import PersonalDataVault
from memberlab.core.settings import Settings

Clock = Callable[[], datetime]


@dataclass
class AppState:
    settings: Settings
    database: Database
    vault: PersonalDataVault
    clock: Clock = field(default=utcnow)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> AppState:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_db_engine(settings.resolved_database_url, pool_size=settings.db_pool_size)
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        return cls(settings, Database(engine), PersonalDataVault(secret), clock)
