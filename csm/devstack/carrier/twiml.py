"""Reading the TwiML an answer URL returns: the verbs the carrier plays, in order.

The receiver (csm.webhooks) answers with `<Response>` holding Say, Dial (a number as
text, or `<Sip>`/`<Number>` inside), Hangup, Pause and Redirect; the carrier's playout
(csm.devstack.carrier.playout) acts on them. Anything else is kept as a verb with its
name so the record shows it was there.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field

#: A TwiML document larger than this is refused (no answer URL needs more).
MAX_TWIML_BYTES = 64 * 1024


class TwimlError(ValueError):
    """The answer URL's document is not TwiML the carrier can play."""


@dataclass(frozen=True, slots=True)
class Verb:
    name: str  # Say, Dial, Hangup, Pause, Redirect, ...
    text: str = ""  # Say's words, Dial's address, Redirect's URL
    attributes: dict[str, str] = field(default_factory=dict)


def parse(document: bytes | str) -> list[Verb]:
    """The verbs of a `<Response>` document, in order."""
    if len(document) > MAX_TWIML_BYTES:
        raise TwimlError(f"TwiML of {len(document)} bytes, over {MAX_TWIML_BYTES}")
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError as err:
        raise TwimlError(f"TwiML is not XML: {err}") from None
    if root.tag != "Response":
        raise TwimlError(f"TwiML root is <{root.tag}>, not <Response>")
    return [Verb(child.tag, _text(child), dict(child.attrib)) for child in root]


def _text(element: ElementTree.Element) -> str:
    """A verb's text; for Dial, the address of its `<Sip>`/`<Number>`/`<Client>` if any."""
    if element.tag == "Dial":
        for noun in element:
            if noun.tag in ("Sip", "Number", "Client") and noun.text:
                return noun.text.strip()
    return (element.text or "").strip()


def pause_seconds(verb: Verb) -> float:
    """A Pause's length (Twilio's default: 1 second)."""
    try:
        return max(0.0, float(verb.attributes.get("length", "1")))
    except ValueError:
        return 1.0
