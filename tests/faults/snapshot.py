"""What the fault tests compare before and after a bad input: the tables and their row counts."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

#: The tables a bad list, strategy or command could touch.
WATCHED = (
    "campaigns",
    "strategies",
    "response_groups",
    "sub_campaigns",
    "lists",
    "contacts",
    "devices",
    "list_members",
    "suppressions",
    "attempts",
    "policies",
    "agent_groups",
    "agents",
    "manager_actions",
)


async def row_counts(engine: AsyncEngine, tables: tuple[str, ...] = WATCHED) -> dict[str, int]:
    """Rows per table; a table that is gone shows as -1 (so a dropped table is a change)."""
    async with engine.connect() as connection:
        present = set(
            (
                await connection.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            ).scalars()
        )
        counts = {}
        for table in tables:
            if table not in present:
                counts[table] = -1
                continue
            # The names come from WATCHED above, never from input.
            counts[table] = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
        return counts


async def count_where(engine: AsyncEngine, table: str, column: str, value: str) -> int:
    """Rows of `table` whose `column` equals `value` (table and column are constants here)."""
    async with engine.connect() as connection:
        return await connection.scalar(
            text(f"SELECT count(*) FROM {table} WHERE {column} = :value"), {"value": value}
        )


async def delete_like(engine: AsyncEngine, table: str, column: str, pattern: str) -> int:
    """Remove what a test created (or a bug let in): rows whose `column` is LIKE `pattern`."""
    async with engine.begin() as connection:
        result = await connection.execute(
            text(f"DELETE FROM {table} WHERE {column} LIKE :pattern"), {"pattern": pattern}
        )
        return result.rowcount
