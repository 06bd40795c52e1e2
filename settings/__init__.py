"""Numbra's settings: one class, read from `NUMBRA_*` environment variables once at start-up."""

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NUMBRA_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./numbra.db"
    database_pool_size: int = Field(10, ge=1)
    redis_url: str | None = None

    provider_name: str = "Provider"
    log_level: str = "INFO"

    # Abuse limits: every request is checked against these before it runs.
    max_query_depth: int = Field(12, ge=2)
    max_aliases: int = Field(30, ge=0)
    max_tokens: int = Field(2_000, ge=100)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    max_page_size: int = Field(500, ge=1)
    max_batch_size: int = Field(1_000, ge=1)

    # Lifecycle periods (days); defaults are the operators' own rules.
    free_reservation_days: int = Field(28, ge=1)
    expired_hold_days: int = Field(56, ge=1)
    terminated_hold_days: int = Field(28, ge=1)
    swap_hold_days: int = Field(1, ge=1)
    lock_days: int = Field(90, ge=1)
    notice_days_before: int = Field(7, ge=0)

    sweep_interval_seconds: float = Field(60, gt=0)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
