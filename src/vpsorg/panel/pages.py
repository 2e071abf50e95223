"""Rendering: Jinja2 templates with the visitor and the form tokens, and the headers every
panel page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from vpsorg.accounts.models import MICROS
from vpsorg.clock import isoformat
from vpsorg.panel.forms import new_form_token
from vpsorg.panel.sessions import Visitor

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
STATIC_URL = "/panel/static"

SECURITY_HEADERS = {
    # Every asset is our own; no page may be framed (clickjacking) or post elsewhere.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # an account's data: no cache keeps a copy
}


def credits(micros: int) -> str:
    return f"{micros / MICROS:,.2f}"


def precise_credits(micros: int) -> str:
    return f"{micros / MICROS:,.4f}"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.globals["static_url"] = STATIC_URL
    templates.env.globals["new_form_token"] = new_form_token
    templates.env.filters["credits"] = credits
    templates.env.filters["precise_credits"] = precise_credits
    templates.env.filters["when"] = lambda value: (isoformat(value) or "").replace("T", " ")
    return templates


def render(
    request: Request,
    template: str,
    visitor: Visitor | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.panel.templates
    response = templates.TemplateResponse(
        request,
        template,
        {
            "visitor": visitor,
            "csrf_token": visitor.csrf_token if visitor else "",
            "errors": {},
            "values": {},
            **context,
        },
        status_code=status_code,
    )
    response.headers.update(SECURITY_HEADERS)
    return response


def redirect(path: str) -> RedirectResponse:
    response = RedirectResponse(path, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response
