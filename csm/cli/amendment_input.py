"""One amendment from `csm amend`'s flags and its `--file`: what the manager typed, checked
and turned into an `Amendment` before anything reaches the workflow.

Every error is one line naming the flag or the file and what is wrong (BadRequest).
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csm.files import read_small_text
from csm.vocabulary import Channel

if TYPE_CHECKING:
    from csm.amendments import Amendment


def load_amendment_file(path: Path, timezone: str, now: datetime | None = None) -> Amendment:
    """An amendment from JSON: an object like `Amendment`, or a bare list of operations.

    `until` may be "HH:MM" (today, campaign's zone) or an ISO instant with its offset.
    Every error names the file and what is wrong in it.
    """
    from csm.amendments import AmendmentRejected, parse_amendment
    from csm.control import BadRequest, until_instant
    from csm.control.until import HHMM

    text = read_small_text(path, f"amendment file {str(path)!r}", error=BadRequest)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadRequest(
            f"{path}: not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    if isinstance(data, list):
        data = {"operations": data}
    if not isinstance(data, dict):
        raise BadRequest(
            f"{path}: expected a JSON object with 'operations' (or a list of operations), "
            f"found {type(data).__name__}"
        )
    until = data.get("until")
    if isinstance(until, str) and HHMM.match(until.strip()):
        try:
            data = {**data, "until": until_instant(until, timezone, now).isoformat()}
        except BadRequest as err:
            raise BadRequest(f"{path}: {err}".replace("--until", "until")) from None
    try:
        return parse_amendment(data)
    except AmendmentRejected as err:
        raise BadRequest(f"{path}: {err}") from None


def given_once(*flags: str) -> None:
    """Refuse a two-value flag given twice, rather than drop all but the last.

    Typer keeps only the last of a repeated `tuple[str, str]` option, and cannot declare
    one both repeatable and two-valued (`list[tuple[str, str]]` is refused: "List types
    with complex sub-types are not currently supported", typer 0.29), so the command
    line itself is counted. Several changes go in an amendment file (--file).
    """
    from csm.control import BadRequest

    for flag in flags:
        count = sum(1 for arg in sys.argv[1:] if arg == flag or arg.startswith(flag + "="))
        if count > 1:
            raise BadRequest(
                f"{flag} may be given once per command; put several changes in an amendment "
                "file (--file)"
            )


def build_amendment(
    *,
    skip: list[str],
    set_filter: tuple[str, str] | None,
    set_channel: tuple[str, str] | None,
    file: Path | None,
    until: str | None,
    reason: str | None,
    author: str | None,
    timezone: str,
    now: datetime | None = None,
) -> Amendment:
    """One amendment from the command's flags, after the operations of `--file` if any.

    Order of operations: the file's, then --set-filter, --set-channel, --skip-pass.
    """
    from csm.amendments import AmendmentRejected, parse_amendment
    from csm.control import BadRequest, until_instant

    base: dict[str, Any] = {"operations": []}
    if file is not None:
        base = load_amendment_file(file, timezone, now).model_dump(mode="json")
    operations: list[dict[str, Any]] = list(base["operations"])
    if set_filter is not None:
        target, expression = set_filter
        operations.append({"op": "set_filter", "target": _pass(target), "filter": expression})
    if set_channel is not None:
        target, channel = set_channel
        if channel not in {c.value for c in Channel}:
            choices = ", ".join(c.value for c in Channel)
            raise BadRequest(
                f"--set-channel {target} {channel}: unknown channel {channel!r} ({choices})"
            )
        operations.append({"op": "set_channel", "target": _pass(target), "channel": channel})
    operations += [{"op": "skip", "target": _pass(target)} for target in skip]
    if not operations:
        raise BadRequest(
            "nothing to amend: give --skip-pass, --set-filter, --set-channel or --file"
        )
    data: dict[str, Any] = {
        "operations": operations,
        "until": base.get("until"),
        "author": author or _given(base.get("author")) or _user(),
        "reason": reason if reason is not None else base.get("reason", ""),
    }
    if until is not None:
        data["until"] = until_instant(until, timezone, now).isoformat()
    try:
        return parse_amendment(data)
    except AmendmentRejected as err:
        raise BadRequest(str(err)) from None


def _pass(reference: str) -> int | str:
    """A pass number as a number (the log then reads `skip 3`), else the pass's name."""
    text = reference.strip()
    return int(text) if text.isdigit() else text


def _given(author: str | None) -> str | None:
    """A file's author, unless it is the model's placeholder for none."""
    return author if author and author != "unknown" else None


def _user() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser() or "unknown"
    except (KeyError, OSError):
        return "unknown"
