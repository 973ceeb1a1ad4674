"""The TwiML the answer URL returns: what a call does once it is answered.

Small, fixed documents (the contract of issue 15 spells each one); text and
addresses are XML-escaped, so a message template's `<` or `&` is spoken, not
parsed.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

CONTENT_TYPE = "text/xml"
EMPTY = "<Response/>"
HANGUP = "<Response><Hangup/></Response>"


def say(message: str | None) -> str:
    """Speak the message (after the beep, on a machine); nothing to say: hang up."""
    if message is None:
        return HANGUP
    return f"<Response><Say>{escape(message)}</Say></Response>"


def dial(address: str) -> str:
    """Bridge the call to an agent: a `sip:` address in `<Sip>`, a number as text."""
    if address.lower().startswith("sip:"):
        return f"<Response><Dial><Sip>{escape(address)}</Sip></Dial></Response>"
    return f"<Response><Dial>{escape(address)}</Dial></Response>"


def not_connected(message: str | None) -> str:
    """No agent was free for a live answer: the message if there is one, then hang up."""
    spoken = f"<Say>{escape(message)}</Say>" if message is not None else ""
    return f"<Response>{spoken}<Hangup/></Response>"


def redirect(url: str) -> str:
    """Not decided yet: wait a second and ask the same answer URL again."""
    return (
        f'<Response><Pause length="1"/><Redirect method="POST">{escape(url)}</Redirect></Response>'
    )
