"""Database tables (SQLModel). Migrations in `csm/migrations` create them.

Table objects never travel in Temporal payloads: activities turn them into
plain DTOs carrying ids, codes and counts.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Campaign(SQLModel, table=True):
    """A business purpose with a defined strategy, run through lists as sub-campaigns."""

    __tablename__ = "campaigns"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=200)
    timezone: str = Field(max_length=64, description="the campaign's operating time zone")
    created_at: datetime = Field(
        default_factory=utcnow,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
