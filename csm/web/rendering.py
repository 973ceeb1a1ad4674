"""The pages' Jinja2 templates (csm/web/templates), autoescaped.

Every value a template shows is escaped by Jinja2 unless marked safe, and none is:
names of campaigns, lists and managers come from people and are shown as text.
The templates ship as package data, so an installed csm finds them next to this file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

TEMPLATES = Path(__file__).parent / "templates"


def _thousands(number: int) -> str:
    """1234567 → "1,234,567", as the index shows counts."""
    return f"{number:,}"


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
)
_environment.filters["thousands"] = _thousands
templates = Jinja2Templates(env=_environment)


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """A page from its template; `user` (the signed-in manager) is shown in the top bar."""
    values.setdefault("user", None)
    return templates.TemplateResponse(request, template, values, status_code=status_code)
