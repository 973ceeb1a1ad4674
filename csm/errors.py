"""csm's exceptions: each message says what went wrong, where, and what to do."""


class CsmError(Exception):
    """Base of every error csm reports to a user as one clear line."""


class StackError(CsmError):
    """A dev-stack step failed (taken port, missing binary, crashed child)."""
