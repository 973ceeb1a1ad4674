"""Settings come from the environment; secrets never print."""

from __future__ import annotations

import pytest

from csm.settings import Settings, asyncpg_dsn, mask_url_password, sqlalchemy_url


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSM_TEMPORAL_ADDRESS", "temporal.example:7233")
    monkeypatch.setenv("CSM_SMTP_PORT", "2525")
    monkeypatch.setenv("DATABASE_URL", "postgres://app:s3cret@db:5432/csm")
    settings = Settings(_env_file=None)
    assert settings.temporal_address == "temporal.example:7233"
    assert settings.temporal_port == 7233
    assert settings.smtp_port == 2525
    assert not settings.uses_embedded_postgres
    assert settings.effective_database_url == "postgresql+asyncpg://app:s3cret@db:5432/csm"


def test_unset_database_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("CSM_EMBEDDED_POSTGRES_PORT", "55555")
    settings = Settings(_env_file=None)
    assert settings.uses_embedded_postgres
    assert settings.effective_database_url.endswith("@127.0.0.1:55555/csm")


def test_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSM_TASK_QUEUE", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("CSM_TASK_QUEUE=from-dotenv\n")
    assert Settings(_env_file=env_file).task_queue == "from-dotenv"


def test_masked_hides_every_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:db-pass@db/csm")
    monkeypatch.setenv("CSM_SMTP_PASSWORD", "smtp-pass")
    monkeypatch.setenv("CSM_TEMPORAL_API_KEY", "api-key-value")
    shown = Settings(_env_file=None).masked()
    text = repr(shown)
    for secret in ("db-pass", "smtp-pass", "api-key-value"):
        assert secret not in text
    assert shown["smtp_password"] == "********"
    assert shown["database_url"] == "postgresql://app:********@db/csm"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql://u@h/d", "postgresql+asyncpg://u@h/d"),
        ("postgresql+asyncpg://u@h/d", "postgresql+asyncpg://u@h/d"),
    ],
)
def test_database_urls_get_the_asyncpg_driver(given: str, expected: str) -> None:
    assert sqlalchemy_url(given) == expected
    assert asyncpg_dsn(given) == "postgresql://u@h/d"


def test_non_postgres_url_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="must be a PostgreSQL URL"):
        sqlalchemy_url("mysql://u@h/d")


def test_mask_leaves_passwordless_urls_alone() -> None:
    assert mask_url_password("postgresql://u@h/d") == "postgresql://u@h/d"


def test_the_database_pool_size_is_a_setting_csm_config_shows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CSM_DATABASE_POOL_SIZE", raising=False)
    assert Settings(_env_file=None).database_pool_size == 20  # 10 kept, 10 overflow: as before
    monkeypatch.setenv("CSM_DATABASE_POOL_SIZE", "7")
    settings = Settings(_env_file=None)
    assert settings.database_pool_size == 7
    assert settings.masked()["database_pool_size"] == "7"
    monkeypatch.setenv("CSM_DATABASE_POOL_SIZE", "0")
    with pytest.raises(ValueError, match="database_pool_size"):
        Settings(_env_file=None)
