"""`csm dev up | down | status | check` as a user runs them: real processes, real ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import psutil

CSM = [sys.executable, "-m", "csm.cli"]


def csm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CSM, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=Path(env["CSM_STATE_DIR"]).parent,
    )


def status(env: dict[str, str]) -> dict[str, dict]:
    result = csm(env, "dev", "status", "--json")
    return {s["name"]: s for s in json.loads(result.stdout)}


def test_up_twice_status_check_kill_and_down(stack_env: dict[str, str]) -> None:
    first = csm(stack_env, "dev", "up")
    assert first.returncode == 0, first.stderr
    started = status(stack_env)
    assert {s["state"] for s in started.values()} == {"running"}
    pids = {name: s["pid"] for name, s in started.items()}

    second = csm(stack_env, "dev", "up")
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout
    assert {name: s["pid"] for name, s in status(stack_env).items()} == pids

    check = csm(stack_env, "dev", "check")
    assert check.returncode == 0, check.stderr
    assert "healthy" in check.stdout

    smtp_process = psutil.Process(pids["smtp"])
    smtp_process.kill()
    smtp_process.wait(5)
    after_kill = csm(stack_env, "dev", "status", "--json")
    assert after_kill.returncode == 1
    states = {s["name"]: s["state"] for s in json.loads(after_kill.stdout)}
    assert states == {"postgres": "running", "temporal": "running", "smtp": "crashed"}

    healed = csm(stack_env, "dev", "up")
    assert healed.returncode == 0, healed.stderr
    pids = {name: s["pid"] for name, s in status(stack_env).items()}
    ours = []
    for pid in pids.values():
        process = psutil.Process(pid)
        ours += [process, *process.children(recursive=True)]

    down = csm(stack_env, "dev", "down")
    assert down.returncode == 0, down.stderr
    _, still_running = psutil.wait_procs(ours, timeout=10)
    assert [p for p in still_running if p.status() != psutil.STATUS_ZOMBIE] == []
    assert {s["state"] for s in status(stack_env).values()} == {"stopped"}


def test_taken_port_is_one_clear_line(stack_env: dict[str, str]) -> None:
    port = int(stack_env["CSM_SMTP_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = csm(stack_env, "dev", "up")
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert error_lines == [
        f"csm: error: port {port} for the SMTP sink is taken by another process; "
        "stop it or set CSM_SMTP_PORT"
    ]


def test_status_of_a_fresh_state_dir_says_stopped(stack_env: dict[str, str]) -> None:
    result = csm(stack_env, "dev", "status", "--json")
    assert result.returncode == 1
    assert {s["state"] for s in json.loads(result.stdout)} == {"stopped"}
