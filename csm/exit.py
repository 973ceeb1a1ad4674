"""Leaving a command cleanly.

Short Temporal client processes can crash at interpreter exit after their
work succeeded (sdk-python#300). So commands flush their output and leave
with `os._exit`, carrying the command's own exit code, never the crash's.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable

from csm.errors import CsmError


def run_and_exit(command: Callable[[], object]) -> None:
    """Run `command`, report a CsmError as one line, and exit with the command's code."""
    code = 0
    try:
        command()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
    except CsmError as err:
        print(f"csm: error: {err}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("csm: interrupted", file=sys.stderr)
        code = 130
    except Exception:
        traceback.print_exc()
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
    os._exit(code)
