"""Errors of list import and display: each says what, where, and what to do."""

from __future__ import annotations

from csm.errors import CsmError


class ListFileError(CsmError):
    """The file as a whole cannot be imported: missing, unreadable, no header, bad mapping."""


class MappingError(CsmError):
    """A mapping (TOML file or flags) that does not fit the file or is malformed."""


class StrictImportError(CsmError):
    """`--strict` and at least one bad row: nothing was imported."""


class UnknownListError(CsmError):
    """No list has this name."""
