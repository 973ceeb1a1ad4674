"""The one error the filter language raises."""

from __future__ import annotations

from csm.errors import CsmError


class FilterError(CsmError):
    """A filter that cannot be parsed or checked; `column` is 1-based.

    str() reads like: unknown field 'atempts' at column 1 (did you mean 'attempts'?)
    """

    def __init__(self, message: str, column: int, hint: str | None = None):
        self.message = message
        self.column = column
        self.hint = hint
        text = f"{message} at column {column}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)
