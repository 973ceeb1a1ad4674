"""The pages' templates without a server: every value from people is escaped (Jinja2's
autoescaping), counts read with thousands separators, and the sign-in guard refuses a
request without a manager before any endpoint runs."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from csm.web.auth import refuse
from csm.web.data import SubCampaignRow
from csm.web.rendering import page


def _request(path: str = "/") -> Request:
    return Request(
        {"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""}
    )


def test_the_index_escapes_names_and_groups_thousands() -> None:
    row = SubCampaignRow(
        id=7,
        name="<script>alert(1)</script>",
        campaign="O'Brien & Co",
        list_name='"list"',
        workflow_id="wf-7",
        state="running",
        day="2026-01-02",
        selected=1_234_567,
        handled=0,
    )
    response = page(
        _request(), "index.html", user="<b>Dana</b>", rows=[row], history_link=lambda w: f"/h/{w}"
    )
    body = response.body.decode()
    assert "<script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "O&#39;Brien &amp; Co" in body and "&#34;list&#34;" in body
    assert "<span>&lt;b&gt;Dana&lt;/b&gt;</span>" in body
    assert '<span class="state running">running</span>' in body
    assert '<progress max="1234567" value="0"></progress>' in body and "0 / 1,234,567" in body
    assert '<a href="/h/wf-7" target="_blank">history</a>' in body


def test_an_empty_index_says_how_to_start_and_a_page_without_a_manager_has_no_sign_out() -> None:
    body = page(_request(), "index.html", rows=[], history_link=str).body.decode()
    assert '<tr><td colspan="7">none yet: <code>csm start</code></td></tr>' in body
    assert "sign out" not in body


def test_the_sign_in_form_escapes_where_it_goes_next() -> None:
    body = page(_request("/login"), "login.html", error="", target='/"><x>').body.decode()
    assert 'value="/&#34;&gt;&lt;x&gt;"' in body and '<p class="error">' not in body


@pytest.mark.parametrize("path", ["/", "/sub/1", "/events/1"])
async def test_a_page_without_a_manager_goes_to_the_sign_in_form(path: str) -> None:
    response = await refuse(_request(path), Exception())
    assert (response.status_code, response.headers["location"]) == (303, f"/login?next={path}")


async def test_the_api_without_a_manager_is_401() -> None:
    response = await refuse(_request("/api/sub-campaigns"), Exception())
    assert response.status_code == 401 and b"token" in response.body
