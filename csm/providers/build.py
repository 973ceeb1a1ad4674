"""The worker's channel providers, as the settings pick them.

E-mail always goes over SMTP. Voice and dialer calls (CSM_VOICE_PROVIDER) and SMS
(CSM_SMS_PROVIDER) go to the seeded simulator or to Twilio (or a compatible carrier, such
as the dev stack's local one). One Twilio voice provider serves both call channels, so
its calls-per-second bucket and outcome board are shared by every pass of the worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from csm.channels import ChannelProvider, Channels
from csm.channels.email import SmtpEmail
from csm.channels.simulator import SimulatedCarrier, SimulatorConfig
from csm.pidfiles import running_pid
from csm.settings import Settings
from csm.smtp import SmtpConfig
from csm.vocabulary import Channel

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def chosen(settings: Settings, provider: str) -> str:
    """The provider a setting picks. `auto` is twilio while the local carrier of this state
    directory runs (`csm dev up` started it), so the demo and a developer's worker take the
    real adapter's path; otherwise the in-process simulator."""
    if provider != "auto":
        return provider
    return "twilio" if local_carrier_running(settings.state_dir) else "simulator"


def local_carrier_running(state_dir: Path) -> bool:
    """Does the carrier `csm dev up` recorded in `<state>/run/carrier.pid` still run?"""
    return running_pid(state_dir / "run" / "carrier.pid") is not None


def build_channels(settings: Settings, engine: AsyncEngine | None = None) -> Channels:
    """Every channel's provider. `engine` is needed when a Twilio provider is picked (its
    attempts live in provider_attempts)."""
    simulator: SimulatedCarrier | None = None

    def simulated() -> SimulatedCarrier:
        nonlocal simulator
        if simulator is None:
            simulator = SimulatedCarrier(
                SimulatorConfig(
                    seed=settings.simulator_seed,
                    latency_seconds=settings.simulator_latency_ms / 1000,
                    evening_from_hour=settings.simulator_evening_from_hour,
                    journal=settings.simulator_journal,
                )
            )
        return simulator

    def twilio_engine(setting: str) -> AsyncEngine:
        if engine is None:
            raise ValueError(f"{setting}=twilio needs the worker's database engine: pass engine=")
        return engine

    voice: ChannelProvider
    sms: ChannelProvider
    if chosen(settings, settings.voice_provider) == "twilio":
        from csm.providers.twilio.adapter import voice_from

        voice = voice_from(settings, twilio_engine("CSM_VOICE_PROVIDER"))
    else:
        voice = simulated()
    if chosen(settings, settings.sms_provider) == "twilio":
        from csm.providers.twilio.adapter import sms_from

        sms = sms_from(settings, twilio_engine("CSM_SMS_PROVIDER"))
    else:
        sms = simulated()
    email = SmtpEmail(SmtpConfig.from_settings(settings), connections=settings.email_connections)
    return Channels(
        {Channel.VOICE: voice, Channel.DIALER: voice, Channel.SMS: sms, Channel.EMAIL: email}
    )
