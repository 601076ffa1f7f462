"""One settings object for the whole application (env prefix ``MEMBERLAB_``, optional ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Language = Literal["zh-CN", "en"]
SUPPORTED_LANGUAGES: tuple[Language, ...] = ("zh-CN", "en")


class Settings(BaseSettings):
    """Where the data lives, how people are spoken to, and the keys that protect personal data.

    Every field can be set as ``MEMBERLAB_<FIELD>`` in the environment or in a ``.env``
    file in the working directory.
    """

    model_config = SettingsConfigDict(
        env_prefix="MEMBERLAB_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    data_dir: Path = Field(
        default=Path("data"), description="Folder for the embedded store and generated files."
    )
    database_url: str | None = Field(
        default=None,
        description=(
            "SQLAlchemy URL. Default: SQLite file memberlab.db in data_dir. "
            "PostgreSQL: postgresql+psycopg://user@host:5432/db"
        ),
    )
    db_pool_size: int = Field(
        default=20,
        ge=1,
        le=200,
        description=(
            "PostgreSQL connections each server process keeps open (about the requests it "
            "serves at once; beyond it up to as many again are opened and closed as needed)."
        ),
    )
    language: Language = Field(default="zh-CN", description="Default language: zh-CN or en.")
    timezone: str = Field(default="Asia/Shanghai", description="Default IANA time zone.")
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Key for personal-data encryption at rest and for keyed lookups of mobile numbers. "
            "Without it, personal data is stored in clear text."
        ),
    )
    tenant: str | None = Field(
        default=None, description="Default tenant (slug or id) for CLI commands."
    )
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description=(
            "Server processes for `memberlab serve` (about one per core on PostgreSQL; "
            "one scheduler leads among them)."
        ),
    )
    threads: int = Field(
        default=4,
        ge=1,
        le=256,
        description=(
            "Threads per server process for the live engine's routes (purchases, returns, "
            "points): few are faster, as threads of one process share one interpreter lock "
            "and many of them waiting on the store spend more CPU handing it over than "
            "working. The other routes share anyio's 40."
        ),
    )
    model_dir: Path | None = Field(
        default=None,
        description="Folder for trained models, e.g. Chinese sentiment (default data_dir/models).",
    )
    public_url: str | None = Field(
        default=None,
        description=(
            "Address members reach this server at, for survey links (default http://host:port)."
        ),
    )

    @field_validator("language", mode="before")
    @classmethod
    def _normalise_language(cls, value: object) -> object:
        if isinstance(value, str):
            lowered = value.strip().lower().replace("_", "-")
            if lowered.startswith("zh"):
                return "zh-CN"
            if lowered.startswith("en"):
                return "en"
        return value

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or Path(self.data_dir) / "models"

    @property
    def resolved_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'memberlab.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
