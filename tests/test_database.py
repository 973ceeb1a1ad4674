"""Migrations on real PostgreSQL."""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from csm.database import create_engine, downgrade, head_revision, upgrade_async
from csm.testing.servers import fresh_database


async def test_session_database_is_at_head(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        revision = await connection.scalar(text("SELECT version_num FROM alembic_version"))
        tables = set(
            (
                await connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
                )
            )
            .scalars()
            .all()
        )
    assert revision == head_revision()
    assert "campaigns" in tables


async def test_upgrade_twice_is_harmless_and_downgrade_round_trips(database_url: str) -> None:
    # A separate database on the same server, so the session's one stays intact.
    server = os.environ.get("DATABASE_URL") or database_url
    async with fresh_database(server) as url:
        await upgrade_async(url)  # already at head: nothing to do
        await asyncio.to_thread(downgrade, url, "base")
        engine = create_engine(url)
        try:
            async with engine.connect() as connection:
                exists = await connection.scalar(text("SELECT to_regclass('public.campaigns')"))
            assert exists is None
            await upgrade_async(url)
            async with engine.connect() as connection:
                exists = await connection.scalar(text("SELECT to_regclass('public.campaigns')"))
            assert exists == "campaigns"
        finally:
            await engine.dispose()
