"""The web page in a real browser (Debian's chromium, driven by Playwright): sign in, watch a
running pass update live, amend a pending pass after its preview, pause from the page.
Without the token, the API refuses."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from playwright.async_api import async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from temporalio.client import Client, WorkflowHandle

from csm.control import start_sub_campaign
from csm.database import driver_connection
from csm.ledger import (
    AttemptRow,
    PassKey,
    StaleBatch,
    mark_inflight,
    record_batch,
    settle_inflight,
    skip_remaining,
)
from csm.schedule import campaign_day
from csm.settings import Settings
from csm.strategy import load_strategy
from csm.subcampaigns import register_sub_campaign
from csm.testing.servers import free_port
from csm.web.app import create_app
from csm.web.auth import COOKIE
from tests.compliance_helpers import rows_of
from tests.helpers import campaign_with_list, freeze_whole_list
from tests.test_cli_subcampaigns import Runner, one_line_error
from worker import build_worker
from workflows.subcampaign import SubCampaignWorkflow

TOKEN = "test-token-" + uuid.uuid4().hex
STRATEGY = """
timezone = "America/Chicago"

[[passes]]
name = "slow calls"
channel = "voice"
pacing = { per_minute = 600, concurrency = 2 }

[[passes]]
name = "texts"
channel = "sms"
template = "Hello"
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError("the browser test needs Debian's chromium: apt-get install chromium")
    return found


def _app(client: Client, engine: AsyncEngine, settings: Settings, **options: Any) -> Starlette:
    return create_app(
        client=client,
        engine=engine,
        token=TOKEN,
        temporal_ui_url=settings.temporal_ui_url,
        namespace=settings.temporal_namespace,
        session_hours=options.get("session_hours", settings.web_session_hours),
    )


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """The app on a free port, served by uvicorn in this process; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    async with asyncio.timeout(10):
        while True:
            if server.started:
                break
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@pytest.fixture
async def web(client: Client, engine: AsyncEngine, settings: Settings) -> AsyncIterator[str]:
    """The web app with the settings' session lifetime."""
    async with serving(_app(client, engine, settings)) as url:
        yield url


def _get(url: str, token: str | None = None, cookie: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if cookie:
        request.add_header("Cookie", f"{COOKIE}={cookie}")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


async def test_without_the_token_nothing_is_shown(web: str) -> None:
    status, body = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns")
    assert status == 401 and "token" in body
    status, _ = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns", "wrong")
    assert status == 401
    status, _ = await asyncio.to_thread(_get, f"{web}/")
    assert status == 303  # to the login page
    status, body = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns", TOKEN)
    assert status == 200 and isinstance(json.loads(body), list)


async def test_watch_a_running_pass_amend_and_pause_from_the_page(
    web: str, client: Client, engine: AsyncEngine, settings: Settings, tmp_path: Path
) -> None:
    campaign, list_name = await campaign_with_list(engine, STRATEGY, contacts=400)
    task_queue = f"web-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
        )
        sub = launched.sub_campaign
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"]
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            await page.goto(f"{web}/sub/{sub.id}")
            assert "/login" in page.url  # not signed in yet
            await page.fill("input[name=name]", "Dana Manager")
            await page.fill("input[name=token]", TOKEN)
            await page.click("button[type=submit]")
            try:
                await page.wait_for_selector("#pass-1 .status.running", timeout=30_000)
            except Exception:
                raise AssertionError(f"no running pass card: {problems}") from None
            (session,) = [c for c in await page.context.cookies() if c["name"] == COOKIE]
            assert session["httpOnly"] and session["sameSite"] == "Lax"
            assert session["expires"] > 0  # it expires (12 h), not a cookie for ever

            attempted = page.locator('#pass-1 .value[data-label="attempted"]')
            first = int((await attempted.inner_text()).replace(",", ""))
            await page.wait_for_function(
                f"""() => {{
                  const n = document.querySelector('#pass-1 .value[data-label="attempted"]');
                  return n && Number(n.textContent.replace(/,/g, '')) > {first};
                }}""",
                timeout=15_000,
            )  # the card moved while the pass ran
            shot = tmp_path / "subcampaign.png"
            await page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            if target := os.environ.get("CSM_SCREENSHOT_TO"):
                shutil.copy(shot, target)

            # Amend the pending pass: the preview's count comes first, then confirm.
            await page.select_option("#amend-pass", "texts")
            await page.fill("#amend-filter", "last_result = 'no_answer'")
            await page.fill("#amend-reason", "only the unreached")
            await page.click("#amend-preview")
            await page.wait_for_selector("#amend-result:has-text('would select')")
            await page.click("#amend-confirm")
            await page.wait_for_selector("#amend-result:has-text('done')")
            # A rejected amendment is shown in place and changes nothing.
            await page.fill("#amend-filter", "last_resultt = 1")
            await page.click("#amend-preview")
            await page.wait_for_selector("#amend-result:has-text('unknown field')")
            assert await page.is_disabled("#amend-confirm")

            await page.click("button[data-action=pause]")
            await page.wait_for_selector("#state.paused", timeout=15_000)
            await browser.close()

        plan = await launched.handle.query(SubCampaignWorkflow.plan_query)
        assert plan.state == "paused"
        assert plan.passes[1].definition.filter == "last_result = 'no_answer'"
        assert [a.author for a in plan.amendments] == ["Dana Manager"]
        actions = await rows_of(
            engine,
            "SELECT actor, action, outcome FROM manager_actions WHERE sub_campaign_id = :s"
            " ORDER BY id",
            s=sub.id,
        )
        assert actions == [
            ("Dana Manager", "amend", "done"),
            ("Dana Manager", "pause", "done: paused"),
        ]
        await launched.handle.signal(SubCampaignWorkflow.stop)
        await asyncio.wait_for(launched.handle.result(), 60)


def _post(url: str, body: dict, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "X-CSM-User": "script",
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_actions_on_a_completed_sub_campaign_are_refused_and_recorded(
    web: str, client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    campaign, list_name = await campaign_with_list(
        engine, 'timezone = "UTC"\n[[passes]]\nname = "one"\nchannel = "voice"\n', contacts=5
    )
    task_queue = f"web-{uuid.uuid4().hex[:8]}"
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        launched = await start_sub_campaign(
            client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
        )
        await asyncio.wait_for(launched.handle.result(), 60)
    sub = launched.sub_campaign
    status, body = await asyncio.to_thread(
        _post, f"{web}/api/sub/{sub.id}/lifecycle", {"action": "pause"}, TOKEN
    )
    assert status == 409 and body["outcome"].startswith("refused")
    status, body = await asyncio.to_thread(
        _post, f"{web}/api/sub/{sub.id}/lifecycle", {"action": "pause"}, "not-the-token"
    )
    assert status == 401
    recorded = await rows_of(
        engine,
        "SELECT actor, action, outcome FROM manager_actions WHERE sub_campaign_id = :s",
        s=sub.id,
    )
    assert [(actor, action) for actor, action, _ in recorded] == [("script", "pause")]
    assert recorded[0][2].startswith("refused")


# ---- the index: states from one visibility listing, handled within selected -----------

ONE_PASS = 'timezone = "UTC"\n[[passes]]\nname = "one"\nchannel = "voice"\n'
#: The second pass waits a minute: time to stop the sub-campaign while it runs.
WAITING = ONE_PASS + '[[passes]]\nname = "later"\nchannel = "sms"\nafter = "60s"\ntemplate = "Hi"\n'


async def _index_when(web: str, ready: Any, seconds: float = 20) -> list[dict[str, Any]]:
    """The index's rows (API) once `ready(rows)` holds: visibility lags a run's close."""
    async with asyncio.timeout(seconds):
        while True:
            status, body = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns", TOKEN)
            assert status == 200, body
            rows = json.loads(body)
            if ready(rows):
                return rows
            await asyncio.sleep(0.2)


async def test_a_stopped_sub_campaign_reads_stopped_on_the_page_and_in_the_cli(
    web: str,
    client: Client,
    engine: AsyncEngine,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stop closes the run as COMPLETED; its `CsmState` says stopped, and the index and the
    CLI both say so. The index reads every row's state from one visibility listing."""
    task_queue = f"web-{uuid.uuid4().hex[:8]}"
    launched = {}
    async with build_worker(client, settings, engine=engine, task_queue=task_queue):
        for label, strategy in (("stopped", WAITING), ("completed", ONE_PASS)):
            campaign, list_name = await campaign_with_list(engine, strategy, contacts=5)
            launched[label] = await start_sub_campaign(
                client, engine, campaign=campaign, list_name=list_name, task_queue=task_queue
            )
        await launched["stopped"].handle.signal(SubCampaignWorkflow.stop)
        for run in launched.values():
            await asyncio.wait_for(run.handle.result(), 60)

    describes = 0
    original = WorkflowHandle.describe

    async def counted(self: WorkflowHandle, *args: Any, **kwargs: Any) -> Any:
        nonlocal describes
        describes += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(WorkflowHandle, "describe", counted)
    ids = {label: run.sub_campaign.id for label, run in launched.items()}

    def states(rows: list[dict[str, Any]]) -> dict[str, str]:
        return {label: r["state"] for r in rows for label, i in ids.items() if r["id"] == i}

    rows = await _index_when(web, lambda rows: states(rows).get("stopped") != "running")
    assert states(rows) == {"stopped": "stopped", "completed": "completed"}
    status, page = await asyncio.to_thread(_get, f"{web}/", TOKEN)
    assert status == 200 and '<span class="state stopped">stopped</span>' in page
    assert describes == 0  # no describe per row: the states came from visibility

    # The CLI derives the state the same way (here: why it refuses to resume).
    workflow_id = launched["stopped"].sub_campaign.workflow_id
    refusal = one_line_error(await Runner(settings, task_queue, tmp_path)("resume", workflow_id))
    assert refusal.endswith("the sub-campaign is stopped (stop is final)")


async def test_handled_never_exceeds_selected_with_unknown_attempts(
    web: str, engine: AsyncEngine
) -> None:
    """A crash's batch in flight settled `unknown`, then recorded after all by the attempt
    that was still running: the ledger refuses the late batch whole (its contacts are
    held once, as `unknown`), and the index never shows more handled than selected."""
    campaign, list_name = await campaign_with_list(engine, ONE_PASS, contacts=50, seed=7)
    sub = await register_sub_campaign(engine, campaign=campaign, list_name=list_name)
    day = campaign_day(datetime.now(UTC), load_strategy(ONE_PASS).timezone)
    key = PassKey(sub.id, day, 1)
    now = datetime.now(UTC)
    async with driver_connection(engine) as connection:
        ids = await freeze_whole_list(connection, sub, day)
        base = (sub.id, sub.campaign_id, day, 1)

        def tried(contacts: list[int]) -> list[AttemptRow]:
            return [AttemptRow(*base, c, c, 0, "voice", "no_answer", None, now) for c in contacts]

        await record_batch(connection, key, tried(ids[:20]), 20, start=0)
        await mark_inflight(connection, key, 40)
        unknown = await settle_inflight(
            connection, key, campaign_id=sub.campaign_id, channel="voice", now=now
        )
        await skip_remaining(
            connection, key, campaign_id=sub.campaign_id, channel="voice", reason="stopped", now=now
        )
        late = tried(ids[20:40])  # the batch (20, 40] of the attempt Temporal gave up on
        with pytest.raises(StaleBatch, match="after its range was closed"):
            await record_batch(connection, key, late, 40, start=20)
        reach = await connection.fetchval(
            "SELECT attempted + skipped FROM pass_reach WHERE sub_campaign_id = $1", sub.id
        )
        rows = await connection.fetchval(
            "SELECT count(*) FROM attempts WHERE sub_campaign_id = $1", sub.id
        )
    assert (unknown, reach, rows) == (20, 50, 50)  # each contact held once
    status, body = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns", TOKEN)
    assert status == 200, body
    row = next(r for r in json.loads(body) if r["id"] == sub.id)
    assert (row["selected"], row["handled"]) == (50, 50)
    assert row["state"] == "unknown"  # registered, never started: no run on Temporal


# ---- sign-in: an expiring, signed session cookie ----------------------------------------


def _sign_in(web: str, *, https: bool = False) -> tuple[int, str, str]:
    """POST the sign-in form; (status, the Set-Cookie header, the session cookie's value)."""
    form = urlencode({"name": "Dana Manager", "token": TOKEN, "next": "/"}).encode()
    request = urllib.request.Request(f"{web}/login", data=form, method="POST")
    if https:  # as a TLS proxy in front of csm web says it
        request.add_header("X-Forwarded-Proto", "https")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=10) as response:
            status, header = response.status, response.headers.get("set-cookie", "")
    except urllib.error.HTTPError as error:
        status, header = error.code, error.headers.get("set-cookie", "")
    value = header.split(";", 1)[0].removeprefix(f"{COOKIE}=").strip('"')
    return status, header, value


async def test_the_session_cookie_is_http_only_lax_expiring_and_secure_under_https(
    web: str,
) -> None:
    status, header, cookie = await asyncio.to_thread(_sign_in, web)
    attributes = {part.strip().lower() for part in header.split(";")[1:]}
    assert status == 303 and cookie
    assert {"httponly", "samesite=lax", "max-age=43200"} <= attributes  # 12 h by default
    assert "secure" not in attributes  # plain http: a Secure cookie would never come back
    _, header, _ = await asyncio.to_thread(_sign_in, web, https=True)
    assert "secure" in {part.strip().lower() for part in header.split(";")[1:]}
    status, page = await asyncio.to_thread(_get, f"{web}/", None, cookie)
    assert status == 200 and "Dana Manager" in page


async def test_a_tampered_or_hand_made_session_cookie_is_refused(web: str) -> None:
    # the old hand-signed form (name|HMAC keyed by the token), which never expired
    hand_made = "Mallory|" + hmac.new(TOKEN.encode(), b"Mallory", hashlib.sha256).hexdigest()
    _, _, cookie = await asyncio.to_thread(_sign_in, web)
    payload, _, rest = cookie.partition(".")
    changed = ("A" if payload[0] != "A" else "B") + payload[1:]
    for forged in (hand_made, f"{changed}.{rest}", cookie[:-2]):
        status, _ = await asyncio.to_thread(_get, f"{web}/", None, forged)
        assert status == 303, forged  # to the sign-in form
        status, body = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns", None, forged)
        assert status == 401 and "token" in body


async def test_an_expired_session_cookie_is_refused(
    client: Client, engine: AsyncEngine, settings: Settings
) -> None:
    """A session of half a second: valid at once, refused once a second has passed."""
    async with serving(_app(client, engine, settings, session_hours=0.5 / 3600)) as web:
        _, header, cookie = await asyncio.to_thread(_sign_in, web)
        assert "max-age=1" in header.lower()
        status, _ = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns", None, cookie)
        assert status == 200
        await asyncio.sleep(1.2)  # the signature's timestamp has whole seconds
        status, _ = await asyncio.to_thread(_get, f"{web}/api/sub-campaigns", None, cookie)
        assert status == 401
        status, _ = await asyncio.to_thread(_get, f"{web}/", None, cookie)
        assert status == 303
