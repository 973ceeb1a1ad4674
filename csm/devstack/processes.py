"""Background processes tracked by pid files, so `down` stops exactly what `up` started."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from csm import pidfiles
from csm.errors import StackError


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_port(
    host: str, port: int, *, timeout: float, alive: ProcessFile | None = None
) -> None:
    """Wait until host:port accepts connections; fail early if `alive` dies meanwhile."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        if alive is not None and alive.pid() is None:
            raise StackError(
                f"{alive.name} exited during start-up; see {alive.log_file} (last lines: "
                f"{alive.log_tail()!r})"
            )
        time.sleep(0.05)
    raise StackError(
        f"{host}:{port} did not open within {timeout:.0f}s; see the logs in the state dir"
    )


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return ""
    return " | ".join(text[-lines:])


@dataclass(frozen=True)
class ProcessFile:
    """One service: its pid file (pid and start time, against pid reuse) and its log."""

    name: str
    run_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def recorded(self) -> tuple[int, float] | None:
        """The pid and start time written by `record`, whether or not it still runs."""
        return pidfiles.recorded(self.pid_file)

    def pid(self) -> int | None:
        """The recorded pid if that very process still runs (not a zombie, not a reused pid)."""
        return pidfiles.running_pid(self.pid_file)

    def record(self, pid: int) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        created = psutil.Process(pid).create_time()
        self.pid_file.write_text(f"{pid} {created}\n")

    def forget(self) -> None:
        self.pid_file.unlink(missing_ok=True)

    def log_tail(self) -> str:
        return tail(self.log_file)

    def spawn(self, argv: Sequence[str], *, env: dict[str, str] | None = None) -> int:
        """Start argv detached from our terminal and session; output goes to the log file."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            try:
                process = subprocess.Popen(
                    list(argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                    close_fds=True,
                )
            except FileNotFoundError as err:
                raise StackError(
                    f"{self.name}: binary {argv[0]} not found; reinstall csm (pip install -e .)"
                ) from err
        self.record(process.pid)
        return process.pid

    def stop(self, *, timeout: float = 10.0) -> bool:
        """SIGTERM the recorded process (and its group), SIGKILL after `timeout`. True if it ran."""
        pid = self.pid()
        if pid is None:
            self.forget()
            return False
        try:
            process = psutil.Process(pid)
            group = [process, *process.children(recursive=True)]
            _signal_group(pid, signal.SIGTERM)
            _, alive = psutil.wait_procs(group, timeout=timeout)
            for straggler in alive:
                straggler.kill()
            psutil.wait_procs(alive, timeout=2)
        except psutil.NoSuchProcess:
            pass
        self.forget()
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(os.getpgid(pid), sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
