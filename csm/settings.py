"""Effective configuration, read from environment variables and `.env`.

Every setting has a default that works on a fresh machine with the embedded
stack (`csm dev up`); production points the same names at real services.
Variables are prefixed `CSM_`, except `DATABASE_URL`, which keeps its
conventional name.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from csm.states import CAMPAIGN_ATTRIBUTE, DAY_ATTRIBUTE, STATE_ATTRIBUTE, SUB_CAMPAIGN_ATTRIBUTE

#: Search attributes the sub-campaign workflow keeps current (ids and codes only).
SEARCH_ATTRIBUTES: dict[str, str] = {
    CAMPAIGN_ATTRIBUTE: "Keyword",
    SUB_CAMPAIGN_ATTRIBUTE: "Keyword",
    DAY_ATTRIBUTE: "Keyword",
    STATE_ATTRIBUTE: "Keyword",
}

EMBEDDED_DATABASE = "csm"
#: The most connections one worker process holds (CSM_DATABASE_POOL_SIZE): room for a few
#: passes side by side (three connections each, csm.sizing) and their short statements.
DEFAULT_DATABASE_POOL_SIZE = 20


class Settings(BaseSettings):
    """What csm connects to and where it keeps local state."""

    model_config = SettingsConfigDict(
        env_prefix="CSM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    state_dir: Path = Field(Path(".csm"), description="local state: pid files, logs, data")

    temporal_address: str = Field("localhost:7233", description="Temporal frontend host:port")
    temporal_namespace: str = "default"
    task_queue: str = "csm"
    temporal_ui_url: str = "http://localhost:8233"
    temporal_tls_cert: Path | None = Field(None, description="client certificate (mTLS)")
    temporal_tls_key: Path | None = Field(None, description="client private key (mTLS)")
    temporal_api_key: SecretStr | None = Field(None, description="Temporal Cloud API key")

    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "CSM_DATABASE_URL"),
        description="PostgreSQL URL; unset means the embedded PostgreSQL in the state dir",
    )
    embedded_postgres_port: int = 54329
    database_pool_size: int = Field(
        DEFAULT_DATABASE_POOL_SIZE,
        ge=1,
        description="the most PostgreSQL connections one worker process holds, overflow "
        "included; checked against the server's max_connections when the worker starts "
        "(docs/sizing.md)",
    )

    smtp_host: str = "localhost"
    smtp_port: int = 1025
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_sender: str = "csm@localhost"

    simulator_seed: int = Field(1, description="seed of the voice/SMS simulator")
    simulator_latency_ms: float = Field(0.0, description="simulated latency per attempt")
    simulator_journal: Path | None = Field(
        None,
        description="file where the simulated carrier records each attempt it places; set, "
        "it answers a repeated attempt key from the record (an idempotent provider)",
    )
    simulator_evening_from_hour: int = Field(
        17, ge=0, le=24, description="local hour from which voice answers follow evening odds"
    )
    voice_provider: Literal["auto", "simulator", "twilio"] = Field(
        "auto",
        description="who places voice and dialer calls: simulator, twilio, or auto (twilio "
        "while `csm dev up`'s local carrier runs, else the simulator)",
    )
    sms_provider: Literal["auto", "simulator", "twilio"] = Field(
        "auto", description="who sends SMS: simulator, twilio, or auto (as voice_provider)"
    )
    twilio_base_url: str = Field(
        "",
        description="Twilio's API (https://api.twilio.com) or a compatible one; "
        "unset: the local carrier of `csm dev up` (http://127.0.0.1:<carrier_port>)",
    )
    twilio_account_sid: str = "ACcsmdev00000000000000000000000000"
    twilio_auth_token: SecretStr = Field(
        SecretStr("csm-dev-token"), description="signs the carrier's webhooks; keep it secret"
    )
    twilio_from: str = Field("+15005550006", description="caller id / sender number (E.164)")
    twilio_calls_per_second: float = Field(
        0.0, ge=0, description="the account's calls-per-second limit, across a worker; 0: none"
    )
    twilio_outcome_timeout_s: float = Field(
        180.0, gt=0, description="after this long without a final status an attempt is looked up"
    )
    twilio_agent_address: str = Field(
        "sip:{group}@agents.invalid",
        description="where a live answer is bridged when its agent group has no address",
    )
    public_url: str = Field(
        "",
        description="the base URL the carrier calls back (the webhook receiver, as the "
        "internet reaches it: behind a reverse proxy, the proxy's https URL); unset: "
        "http://127.0.0.1:<webhooks_port>",
    )
    webhooks_host: str = Field("127.0.0.1", description="address `csm webhooks` listens on")
    webhooks_port: int = Field(8411, description="port of `csm webhooks`")
    carrier_port: int = Field(8410, description="port of the local carrier (`csm dev up`)")
    carrier_speed: float = Field(
        0.0, ge=0, description="local carrier's ring/AMD/talk delays: 0 at once, 1 real-world"
    )
    email_connections: int = Field(10, description="SMTP connections reused per worker")
    max_concurrent_activities: int | None = Field(
        None,
        ge=1,
        description="activities one worker process runs at once (unset: the SDK's default); "
        "1 puts each shard of a sharded pass on its own worker process",
    )

    metrics_address: str = Field(
        "127.0.0.1:9464",
        description="IP:port of the worker's Prometheus /metrics endpoint; empty: off",
    )

    default_region: str = Field("US", description="phone region for numbers without +country")

    web_token: SecretStr | None = Field(
        None, description="token (password) of `csm web`; unset: a random one per run"
    )
    web_host: str = Field("127.0.0.1", description="address `csm web` listens on")
    web_port: int = Field(8000, description="port of `csm web`")
    web_session_hours: float = Field(
        12.0, gt=0, description="how long a `csm web` sign-in lasts before it asks again"
    )

    @model_validator(mode="after")
    def _local_provider_urls(self) -> Settings:
        """Unset, the carrier's API and the public URL are the embedded stack's own."""
        if not self.twilio_base_url:
            self.twilio_base_url = f"http://127.0.0.1:{self.carrier_port}"
        if not self.public_url:
            host = "127.0.0.1" if self.webhooks_host in ("0.0.0.0", "::") else self.webhooks_host
            self.public_url = f"http://{host}:{self.webhooks_port}"
        return self

    @property
    def temporal_port(self) -> int:
        return int(self.temporal_address.rsplit(":", 1)[1])

    @property
    def temporal_ui_port(self) -> int:
        return int(self.temporal_ui_url.rsplit(":", 1)[1].split("/")[0])

    @cached_property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL (asyncpg driver) of the database in use."""
        if self.database_url:
            return sqlalchemy_url(self.database_url)
        return (
            f"postgresql+asyncpg://postgres@127.0.0.1:{self.embedded_postgres_port}"
            f"/{EMBEDDED_DATABASE}"
        )

    @property
    def uses_embedded_postgres(self) -> bool:
        return not self.database_url

    def masked(self) -> dict[str, Any]:
        """Every setting with its effective value, secrets and URL passwords masked."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********"
            elif name == "database_url" and value:
                value = mask_url_password(value)
            shown[name] = None if value is None else str(value)
        shown["effective_database_url"] = mask_url_password(self.effective_database_url)
        return shown


def sqlalchemy_url(url: str) -> str:
    """`postgres://` or `postgresql://` URLs get the asyncpg driver SQLAlchemy needs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a PostgreSQL URL (postgresql://...), got {url!r}")


def asyncpg_dsn(url: str) -> str:
    """The plain libpq-style DSN asyncpg.connect() accepts."""
    return "postgresql://" + sqlalchemy_url(url).split("://", 1)[1]


def mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user, has_password, _ = credentials.partition(":")
    return f"{scheme}://{user}{':********' if has_password else ''}@{host}"


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
