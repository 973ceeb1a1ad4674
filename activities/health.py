"""Activities that prove each real part answers: the database and the SMTP server."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from csm.smtp import SmtpConfig


@dataclass
class DatabaseHealth:
    server_version: str
    schema_revision: str


@dataclass
class SmtpHealth:
    greeting_code: int
    noop_code: int


class HealthActivities:
    """Bound to the worker's real clients, so tests hand in ones bound to test servers."""

    def __init__(self, engine: AsyncEngine, smtp: SmtpConfig):
        self.engine = engine
        self.smtp = smtp

    @activity.defn(name="check_database")
    async def check_database(self) -> DatabaseHealth:
        async with self.engine.connect() as connection:
            version = await connection.scalar(text("SHOW server_version"))
            revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        return DatabaseHealth(server_version=str(version), schema_revision=str(revision))

    @activity.defn(name="check_smtp")
    async def check_smtp(self) -> SmtpHealth:
        client = self.smtp.client(timeout=10)
        greeting = await client.connect()
        try:
            noop = await client.noop()
        finally:
            await client.quit()
        return SmtpHealth(greeting_code=greeting.code, noop_code=noop.code)
