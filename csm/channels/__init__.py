"""Channels: how one attempt reaches one device. One interface for real provider adapters
(SMTP here) and the simulator of carriers, phones, machines, people and agents."""

from csm.channels.base import AttemptOutcome, AttemptRequest, ChannelProvider, Channels

__all__ = ["AttemptOutcome", "AttemptRequest", "ChannelProvider", "Channels"]
