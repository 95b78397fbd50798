"""``GET /``: the Credit usage dashboard, a client of the public GraphQL API.

The page is plain HTML with JavaScript modules under ``/static/dashboard/``; it holds no
data of its own and sees exactly what its token may see through ``POST /graphql``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse

from app.pages import STATIC_DIR, page

_INDEX = (STATIC_DIR / "dashboard" / "index.html").read_text(encoding="utf-8")


async def dashboard(_: Request) -> HTMLResponse:
    """The dashboard page, with the shared Content-Security-Policy."""
    return page(_INDEX)
