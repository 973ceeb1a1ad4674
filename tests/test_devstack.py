"""`csm dev up | down | status | check` as a user runs them: real processes, real ports."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from csm.devstack.carrier.world import World
from csm.devstack.stack import DevStack
from csm.errors import StackError
from csm.settings import Settings
from csm.testing.servers import free_port

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
    if csm(stack_env, "webhooks", "--help").returncode != 0:
        pytest.skip("`csm webhooks` is not on this branch: `csm dev up` cannot start the receiver")
    first = csm(stack_env, "dev", "up")
    assert first.returncode == 0, first.stderr
    started = status(stack_env)
    assert {s["state"] for s in started.values()} == {"running"}
    assert set(started) == {"postgres", "temporal", "smtp", "carrier", "webhooks"}
    assert started["carrier"]["address"] == f"127.0.0.1:{stack_env['CSM_CARRIER_PORT']}"
    assert started["webhooks"]["address"] == f"127.0.0.1:{stack_env['CSM_WEBHOOKS_PORT']}"
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
    assert states == {
        "postgres": "running",
        "temporal": "running",
        "smtp": "crashed",
        "carrier": "running",
        "webhooks": "running",
    }

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


def test_the_carrier_service_starts_once_answers_and_stops(tmp_path: Path) -> None:
    """The `carrier` service of `csm dev up` on its own: a real process on its port,
    placements journaled in the state dir, stopped by `down`'s stop."""
    settings = Settings(state_dir=tmp_path / "state", carrier_port=free_port())
    stack = DevStack(settings)
    said: list[str] = []
    try:
        stack.start_carrier(said.append)()
        carrier = {s.name: s for s in stack.status()}["carrier"]
        assert (carrier.state, carrier.address) == ("running", f"127.0.0.1:{settings.carrier_port}")
        stack.start_carrier(said.append)()
        assert said[-1].startswith("carrier: already running")

        sid = settings.twilio_account_sid
        token = settings.twilio_auth_token.get_secret_value()
        key = "1-20260105-1-2-3-1"
        refused = World(settings.simulator_seed).message_plan(key).refused
        base = f"http://127.0.0.1:{settings.carrier_port}"
        with httpx.Client(base_url=base, auth=(sid, token)) as http:
            placed = http.post(
                f"/2010-04-01/Accounts/{sid}/Messages.json",
                data={
                    "To": "+33612345678",
                    "From": settings.twilio_from,
                    "Body": "hi",
                    "StatusCallback": f"http://127.0.0.1:9/twilio/sms/status?key={key}",
                },
            )
            assert placed.status_code == (400 if refused else 201), placed.text
            recorded = http.get("/_carrier/record").json()
        assert recorded["placements"] == ({} if refused else {key: 1})
        assert stack.carrier_journal.exists()
    finally:
        stopped = stack.carrier.stop()
    assert stopped
    assert {s.name: s.state for s in stack.status()}["carrier"] == "stopped"


def test_a_taken_carrier_port_is_one_clear_error(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state", carrier_port=free_port())
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", settings.carrier_port))
        squatter.listen()
        with pytest.raises(StackError) as refused:
            DevStack(settings).start_carrier(print)
    assert str(refused.value) == (
        f"port {settings.carrier_port} for the local carrier is taken by another process; "
        "stop it or set CSM_CARRIER_PORT"
    )
