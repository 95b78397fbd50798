"""One typed, frozen settings object, read once from ``CREDITLENS_*`` variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service configuration. Nothing else in the code base reads ``os.environ``."""

    model_config = SettingsConfigDict(env_prefix="CREDITLENS_", frozen=True, extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./creditlens.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or postgresql+asyncpg://…",
    )
    database_echo: bool = False
    pool_size: int = Field(default=10, ge=1)

    # GraphQL limits: safe defaults for a public endpoint.
    max_query_depth: int = Field(default=12, ge=1)
    max_aliases: int = Field(default=30, ge=1)
    max_tokens: int = Field(default=2_000, ge=10)
    max_query_cost: int = Field(default=50_000, ge=1)
    max_series_points: int = Field(default=10_000, ge=1)
    max_page_size: int = Field(default=100, ge=1, le=1000)
    introspection: bool = True
    field_suggestions: bool = True
    graphiql: bool = True
    batching: bool = False

    # Answers kept per worker for repeated queries (app/answer_cache.py); 0 turns it off.
    answer_cache_bytes: int = Field(default=64 * 1_048_576, ge=0, description="0 disables")

    # Request limits.
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_ingest_body_bytes: int = Field(default=5 * 1_048_576, ge=1024)
    max_ingest_events: int = Field(default=10_000, ge=1)
    max_batch_operations: int = Field(
        default=10, ge=1, description="Operations in one batched request (when batching)."
    )
    # Time limits (docs/hardening.md): a slow client or a heavy query holds a socket for at
    # most this long, and never a database connection while its request arrives.
    header_timeout_seconds: float = Field(
        default=10, gt=0, description="From connection (or the previous answer) to headers."
    )
    body_timeout_seconds: float = Field(
        default=30, gt=0, description="To receive a whole body, read before any database work."
    )
    execution_timeout_seconds: float = Field(
        default=10, gt=0, description="GraphQL work of one request, then QUERY_TOO_COMPLEX."
    )
    auth_failures_per_minute: int = Field(
        default=60, ge=0, description="Failed token checks per client address; 0 disables"
    )
    # Rate limits per access token (docs/hardening.md): in-process token buckets.
    rate_limit_per_minute: int = Field(default=600, ge=0, description="0 disables")
    rate_limit_cost_aware: bool = Field(
        default=False,
        description="Charge each GraphQL request by its query cost, not 1 per request.",
    )
    rate_limit_cost_unit: int = Field(
        default=1_000, ge=1, description="Query cost points that count as one request."
    )
    ingest_rate_limit_per_minute: int = Field(default=3_000, ge=0, description="0 disables")

    cors_allowed_origins: list[str] = Field(default_factory=list)
    log_json: bool = False
    log_level: str = "INFO"
    # When set, GET /metrics needs 'Authorization: Bearer <metrics_token>'.
    metrics_token: SecretStr | None = None

    # Token hashing pepper: a server secret mixed into every stored token hash, so a
    # leaked database alone cannot be used to check guessed tokens offline.
    token_pepper: SecretStr = SecretStr("creditlens-development-pepper")

    # Alerts and webhooks (docs/alerts.md).
    webhook_secret_key: SecretStr = Field(
        default=SecretStr("creditlens-development-webhook-key-do-not-use-in-production"),
        description=(
            "Encrypts webhook signing secrets at rest (Fernet). Comma-separated keys rotate: "
            "the first encrypts, all decrypt. The default is for development only."
        ),
    )
    webhook_allow_insecure: bool = Field(
        default=False,
        description="Development and tests: allow http and non-public webhook addresses.",
    )
    webhook_dispatcher: bool = Field(
        default=True, description="Deliver webhooks from inside `serve` (every worker)."
    )
    webhook_poll_seconds: float = Field(default=0.5, gt=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    webhook_concurrency: int = Field(default=32, ge=1, le=1000)
    webhook_retry_base_seconds: float = Field(
        default=4.0, gt=0, description="First retry after 50-100 % of this."
    )
    webhook_retry_max_seconds: float = Field(default=7200.0, gt=0)
    webhook_retry_period_seconds: float = Field(
        default=86400.0, ge=0, description="Retries go on for at least this long."
    )
    webhook_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A claimed message is claimed again after this (its sender died).",
    )

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value.split(":///", 1)[1]
        return value

    @model_validator(mode="after")
    def _lease_outlasts_an_attempt(self) -> Settings:
        # A lease shorter than an attempt would let a second dispatcher send the same
        # message while the first is still waiting for its answer.
        if self.webhook_lease_seconds <= self.webhook_timeout_seconds:
            raise ValueError("webhook_lease_seconds must be longer than webhook_timeout_seconds")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    # Document analysis (issue 10, docs/hardening.md): the selections one cost estimate
    # may visit before the document is refused as QUERY_TOO_COMPLEX.
    max_analysis_steps: int = Field(default=10_000, ge=100)

    # Many workers, one truth (issue 16, docs/deploy.md). With a Redis URL, rate limits and
    # live usage are shared by every worker and host; without one they are per process.
    redis_url: SecretStr | None = Field(
        default=None, description="redis://host:6379/0; optional, needed for --workers > 1"
    )
    # prometheus_client's own variable (set by `creditlens serve`): the directory where
    # every worker writes its metric values, so /metrics sums them.
    metrics_multiprocess_dir: str | None = Field(
        default=None, validation_alias="PROMETHEUS_MULTIPROC_DIR"
    )
    shutdown_timeout_seconds: int = Field(
        default=30, ge=1, description="On SIGTERM, how long in-flight work may finish."
    )
    # Live usage over WebSocket (app/subscriptions.py).
    ws_init_timeout_seconds: float = Field(default=10, gt=0)
    ws_idle_timeout_seconds: float = Field(
        default=60, gt=0, description="Close a connection without subscriptions after this."
    )
    ws_max_subscriptions_per_token: int = Field(
        default=10, ge=1, description="Across all workers with Redis; per worker without."
    )
