"""GraphiQL and the dashboard are served from this service's own files, under a strict CSP."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.graphiql import DEFAULT_QUERY
from app.main import create_app
from app.pages import STATIC_DIR

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Accept": "text/html,application/xhtml+xml"}
PAGES = [("/graphql", HTML), ("/", {})]


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


@pytest.mark.parametrize(("path", "headers"), PAGES, ids=["graphiql", "dashboard"])
async def test_page_allows_only_its_own_origin(client, path, headers):
    response = await client.get(path, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unpkg" not in response.text
    assert not re.search(r'(?:src|href)="(?:https?:)?//', response.text)
    # Inline scripts would be refused by the policy: only data blocks may be inline.
    for attributes, body in re.findall(r"<script([^>]*)>(.*?)</script>", response.text, re.S):
        assert "src=" in attributes or 'type="application/json"' in attributes, body[:80]


@pytest.mark.parametrize(("path", "headers"), PAGES, ids=["graphiql", "dashboard"])
async def test_every_file_a_page_loads_is_served(client, path, headers):
    html = (await client.get(path, headers=headers)).text
    wanted = [ref for ref in _references(html) if ref.startswith("/static/")]
    # Module imports of the dashboard's scripts count too.
    for script in (STATIC_DIR / "dashboard").glob("*.js"):
        wanted += [
            f"/static/dashboard/{name}"
            for name in re.findall(r'from "\./([\w.-]+)"', script.read_text())
        ]
    assert wanted
    for ref in sorted(set(wanted)):
        response = await client.get(ref)
        assert response.status_code == 200, ref
        assert response.content, ref


async def test_graphiql_opens_on_the_readme_example_with_an_authorization_slot(client):
    html = (await client.get("/graphql", headers=HTML)).text
    readme = (ROOT / "README.md").read_text()
    example = re.search(r"```graphql\n(.*?)```", readme, re.S)
    assert example is not None
    assert example.group(1) == DEFAULT_QUERY
    assert '\\"Authorization\\": \\"Bearer' in html


async def test_graphiql_is_not_served_when_turned_off(settings):
    application = create_app(settings.model_copy(update={"graphiql": False}))
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/graphql", headers=HTML)
    await application.state.engine.dispose()
    assert not response.headers["content-type"].startswith("text/html")


def test_vendored_files_match_their_pinned_sha256_and_carry_licenses():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "vendor-static"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    vendor = STATIC_DIR / "vendor"
    for library in (path for path in vendor.iterdir() if path.is_dir()):
        assert (library / "LICENSE").is_file(), library.name


async def test_static_files_are_gzipped_for_clients_that_accept_it(client):
    response = await client.get(
        "/static/vendor/graphiql/graphiql.min.js", headers={"Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.num_bytes_downloaded < 400_000  # 978 KB unpacked
