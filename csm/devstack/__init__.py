"""The embedded development stack: Temporal dev server, PostgreSQL, SMTP sink.

`csm dev up | down | status` drive it; tests start the same binaries through
their own fixtures.
"""
