"""Pid files of the embedded stack's services: `<state>/run/<name>.pid`, a pid and its
process's start time (so a reused pid is not taken for the service).

Core, so the worker can ask whether the local carrier runs (csm.providers.build) without
importing the dev stack, which writes these files (csm.devstack.processes).
"""

from __future__ import annotations

from pathlib import Path

import psutil


def recorded(pid_file: Path) -> tuple[int, float] | None:
    """The pid and start time a pid file holds, whether or not that process still runs."""
    try:
        pid_text, created_text = pid_file.read_text().split()
        return int(pid_text), float(created_text)
    except (FileNotFoundError, ValueError):
        return None


def running_pid(pid_file: Path) -> int | None:
    """The recorded pid if that very process still runs (not a zombie, not a reused pid)."""
    found = recorded(pid_file)
    if found is None:
        return None
    pid, created = found
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - created) > 1.0:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except psutil.Error:
        return None
    return pid
