"""The embedded development stack: Temporal dev server, PostgreSQL, SMTP sink, a local
Twilio-compatible carrier (`carrier/`) and the webhook receiver.

`csm dev up | down | status` drive it; tests start the same binaries through
their own fixtures.
"""
