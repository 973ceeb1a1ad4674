"""SMTP connections from settings (plain, STARTTLS or implicit TLS, optional auth)."""

from __future__ import annotations

from dataclasses import dataclass

import aiosmtplib

from csm.settings import Settings


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False
    sender: str = "csm@localhost"

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            starttls=settings.smtp_starttls,
            tls=settings.smtp_tls,
            sender=settings.smtp_sender,
        )

    def client(self, *, timeout: float = 30) -> aiosmtplib.SMTP:
        """An unconnected client; `async with` connects, upgrades and logs in."""
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.user,
            password=self.password,
            use_tls=self.tls,
            start_tls=self.starttls if not self.tls else False,
            timeout=timeout,
        )
