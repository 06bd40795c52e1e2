"""Numbra's settings: one class, read from `NUMBRA_*` environment variables once at start-up."""

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.organizations import DEEPEST


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NUMBRA_", env_file=".env", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./numbra.db"
    database_pool_size: int = Field(10, ge=1)
    redis_url: str | None = None

    # Where `numbra serve` listens, unless its --host/--port say otherwise.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)

    provider_name: str = "Provider"
    # DEBUG, INFO, WARNING, ERROR or CRITICAL, in any case.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # "json": one JSON object per line, for log collectors; "text" for people.
    log_format: Literal["text", "json"] = "text"
    # When set, GET /metrics needs it as a bearer token.
    metrics_token: SecretStr | None = None
    # /readyz gives up on the database or Redis after this.
    ready_timeout_seconds: float = Field(2, gt=0)

    # Abuse limits: every request is checked against these before it runs.
    max_query_depth: int = Field(12, ge=2)
    max_aliases: int = Field(30, ge=0)
    max_tokens: int = Field(2_000, ge=100)
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # A body still arriving this long after its headers is refused (408): slow clients.
    body_timeout_seconds: float = Field(10, gt=0)
    # A request head (request line and headers) must arrive within this, and be no
    # larger than this, or it is refused (408, 431): slow and huge headers.
    header_timeout_seconds: float = Field(10, gt=0)
    max_header_bytes: int = Field(65_536, ge=1024)
    max_page_size: int = Field(500, ge=1)
    max_batch_size: int = Field(1_000, ge=1)
    # Answers a token may get a UTC day that a number it would add or import is already
    # held outside its subtree; past it, its intake is refused until the day ends.
    intake_refusals_per_day: int = Field(100, ge=1)
    # Levels of organizations below the provider; the path column holds at most DEEPEST.
    max_tree_depth: int = Field(50, ge=1, le=DEEPEST)
    # Numbers one import file may name (a range counts as the numbers it expands to):
    # a file over it is refused whole, before anything is expanded or written.
    max_import_numbers: int = Field(2_000_000, ge=1)
    # Automatic persisted queries: true runs only operations already registered (by an
    # ADMIN token of the provider, sending the document with its hash).
    persisted_only: bool = False
    max_persisted_queries: int = Field(10_000, ge=1)
    # The fast execution path (schema/fast_execution.py): plain fields resolved and
    # completed without graphql-core's per-value overhead; false runs graphql-core's own.
    fast_execution: bool = True
    # Cost a token may spend per clock minute (README, "Cost limits"); past it, 429.
    cost_budget_per_minute: int = Field(5_000, ge=1)
    # Failed authentications a client address may make per clock minute; past it, every
    # token it sends is refused (429) until the minute ends.
    auth_failures_per_minute: int = Field(20, ge=1)
    # Live updates (subscriptions over graphql-transport-ws): how many a connection and a
    # token (per process) may hold at once, and how often a connection's token is
    # checked again (a revoked or expired one's socket is closed with 4403).
    max_subscriptions_per_connection: int = Field(10, ge=1)
    max_subscriptions_per_token: int = Field(50, ge=1)
    live_token_check_seconds: float = Field(30, gt=0)

    # Lifecycle periods (days); defaults are the operators' own rules.
    free_reservation_days: int = Field(28, ge=1)
    expired_hold_days: int = Field(56, ge=1)
    terminated_hold_days: int = Field(28, ge=1)
    swap_hold_days: int = Field(1, ge=1)
    lock_days: int = Field(90, ge=1)
    notice_days_before: int = Field(7, ge=0)
    # The notice of a port order's FOC date goes out this many days before it.
    port_notice_days: int = Field(2, ge=0)
    # The hold of a number whose service was cancelled, and what becomes of a number when a
    # subscription, cancellation or swap hold ends. Each organization may set its own.
    cancelled_hold_days: int = Field(28, ge=1)
    after_hold: Literal["AVAILABLE", "LOCKED", "DELETED"] = "AVAILABLE"

    sweep_interval_seconds: float = Field(60, gt=0)

    # Mail: with no SMTP host, notices are written to the log instead.
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    # True: STARTTLS is required; False: plain SMTP, as to a relay on the same host.
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(30, gt=0)
    mail_from: str = "numbra@localhost"
    # A notice whose sending fails is retried after this, doubling each time, up to the
    # attempt limit; then it is marked FAILED. A worker's claim on a notice lasts the lease.
    notice_retry_seconds: float = Field(60, gt=0)
    notice_max_attempts: int = Field(10, ge=1)
    notice_lease_seconds: float = Field(300, gt=0)

    # Webhooks (docs/webhooks.md): a delivery not answered 2xx within the timeout is
    # retried, 1 min doubling to at most an hour apart, for the retry window; then FAILED.
    # An endpoint whose attempts fail this many times in a row is disabled. True allows
    # http and private, loopback and link-local targets (tests, closed networks).
    webhook_allow_private: bool = False
    webhook_retry_hours: float = Field(24, gt=0)
    webhook_timeout_seconds: float = Field(10, gt=0)
    webhook_disable_after_failures: int = Field(50, ge=1)
    # A worker's claim on a delivery: past it, another worker may send it again.
    webhook_lease_seconds: float = Field(60, gt=0)
    # Deliveries a worker claims at once, and sends at the same time.
    webhook_batch_size: int = Field(200, ge=1)
    webhook_concurrency: int = Field(20, ge=1)
    max_webhook_endpoints: int = Field(20, ge=1)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
