"""Reading the small text files a user names: strategies, policies, amendments, mappings.

Such a file is a few kilobytes of TOML or JSON that a person wrote. A path
that names something else (a directory, `/dev/zero`, a named pipe, a file of
gigabytes) is a slip, and must be one clear error, not a read that blocks or
never ends and takes the machine's memory with it. So only a regular file is
read, and at most `MAX_SMALL_FILE` bytes of it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from csm.errors import CsmError

#: The most a strategy, policy, amendment or mapping file may hold: far more than any real one.
MAX_SMALL_FILE = 1024 * 1024


class FileReadError(CsmError):
    """A small text file that cannot be read: missing, not a regular file, too big, not UTF-8."""


def read_small_text(
    path: str | Path,
    what: str,
    limit: int = MAX_SMALL_FILE,
    *,
    encoding: str = "utf-8",
    error: Callable[[str], CsmError] = FileReadError,
) -> str:
    """The text of the regular file `path`, which holds at most `limit` bytes.

    `what` names the file in the error, e.g. "strategy file '/x/y.toml'": every
    refusal is `error("cannot read {what}: {reason}")`, a CsmError (FileReadError
    unless the caller wants its own subclass).
    """

    def refuse(reason: str) -> CsmError:
        return error(f"cannot read {what}: {reason}")

    # O_NONBLOCK: opening a named pipe must not wait for a writer (no effect on files).
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as err:
        raise refuse(err.strerror or str(err)) from None
    try:
        status = os.fstat(descriptor)
        if stat.S_ISDIR(status.st_mode):
            raise refuse("it is a directory, not a file")
        if not stat.S_ISREG(status.st_mode):
            raise refuse("not a regular file")
        if status.st_size > limit:
            raise refuse(_too_big(status.st_size, limit))
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(limit + 1)  # the size can lie (a file growing, /proc)
    except OSError as err:
        raise refuse(err.strerror or str(err)) from None
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise refuse(_too_big(None, limit))
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise refuse(f"not UTF-8 text (byte {err.start}); save it as UTF-8") from None


def _too_big(size: int | None, limit: int) -> str:
    most = f"{limit // 1024 // 1024} MiB" if limit % (1024 * 1024) == 0 else f"{limit:,} bytes"
    has = f" ({size:,} bytes)" if size is not None else ""
    return f"larger than {most}{has}, too big for a file written by hand"
