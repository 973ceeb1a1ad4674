"""The webhook receiver: a carrier's signed callbacks into PostgreSQL (issue 15).

A front end like csm.web: one ASGI app, served alone by `csm webhooks` and mounted
in `csm web` at the same paths (/twilio/...). The carrier's signature is its only
authentication.

- `forms`: the request read and checked (64 KiB, a form, the signature) before any write;
- `store`: the SQL, one statement per callback (rank-monotonic, events, orphans);
- `twiml`: the TwiML documents the answer URL returns;
- `app`: the routes (`create_app`, `mount`) and the answer URL's wait for an agent.
"""

from csm.webhooks.app import Receiver, create_app, mount
from csm.webhooks.store import orphan_count

__all__ = ["Receiver", "create_app", "mount", "orphan_count"]
