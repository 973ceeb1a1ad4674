"""Names people give things (campaigns, lists, sub-campaigns, passes): one line of text.

A name is printed in tables, log lines, reports and the Temporal UI, and typed
again on command lines. A line break or another control character in one (a
slip in a script, `$'x\\nsecond'` in a shell) would split or garble every one
of those, so such names are refused when the thing is created: no control
characters (C0, DEL, C1) and no Unicode line or paragraph separators. The
strategy's names, subjects and agent groups follow the same rule
(csm.strategy.values.check_line).
"""

from __future__ import annotations

import unicodedata

#: Unicode categories a name may not hold: control characters, line and paragraph separators.
_LINE_BREAKING = frozenset({"Cc", "Zl", "Zp"})


def first_line_break(text: str) -> int | None:
    """The index of the first character that breaks a line of text, or None."""
    for index, char in enumerate(text):
        if unicodedata.category(char) in _LINE_BREAKING:
            return index
    return None


def describe_character(text: str, index: int) -> str:
    """ "NUL ('\\x00') at character 8": which character, shown safely, and where."""
    char = text[index]
    label = "NUL" if char == "\0" else unicodedata.name(char, f"U+{ord(char):04X}")
    return f"{label} ({char!r}) at character {index + 1}"


def line_problem(name: str, what: str) -> str | None:
    """Why `name` is not one line of text (`what` is e.g. "a campaign name"), or None."""
    index = first_line_break(name)
    if index is None:
        return None
    return (
        f"{what} is one line of text without control characters; this one has "
        f"{describe_character(name, index)}"
    )
