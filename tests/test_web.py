"""The web page in a real browser (Debian's chromium, driven by Playwright): sign in, watch a
running pass update live, amend a pending pass after its preview, pause from the page.
Without the token, the API refuses."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import async_playwright
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from csm.launch import start_sub_campaign
from csm.settings import Settings
from csm.testing.servers import free_port
from csm.web.app import create_app
from tests.compliance_helpers import rows_of
from tests.helpers import campaign_with_list
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


@pytest.fixture
async def web(client: Client, engine: AsyncEngine, settings: Settings) -> AsyncIterator[str]:
    """The web app on a free port, served by uvicorn in this process."""
    port = free_port()
    app = create_app(
        client=client,
        engine=engine,
        token=TOKEN,
        temporal_ui_url=settings.temporal_ui_url,
        namespace=settings.temporal_namespace,
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    serving = asyncio.ensure_future(server.serve())
    async with asyncio.timeout(10):
        while True:
            if server.started:
                break
            await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await serving


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
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
