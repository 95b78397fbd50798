"""The dashboard and GraphiQL in a real browser: Debian's Chromium driven by Playwright,
against a real uvicorn serving a SQLite file with the demo's data.

Every request to another origin is aborted and recorded, and every test ends by asserting
that there was none and that the console stayed free of errors (a CSP violation is one).
Screenshots go to test-artifacts/ (kept by CI as artifacts, ignored by git).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from app.demo import DemoTokens, load_demo
from app.settings import Settings
from db import migrate
from db.engine import create_engine

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DESKTOP = {"width": 1400, "height": 900}
MOBILE = {"width": 390, "height": 844}
ROW = "calls creditsConsumed percentOfTotal"
USAGE = f"""query($timeRange: TimeRangeInput!, $keyId: ID, $granularity: Granularity!) {{
  organization {{ usage(timeRange: $timeRange, keyId: $keyId) {{
    calls creditsConsumed
    byEndpoint {{ endpoint {ROW} }}
    bySource {{ source {ROW} }}
    byUser {{ user {{ name }} {ROW} }}
    byApiKey {{ apiKey {{ name }} {ROW} }}
    byOutcome {{ outcome {ROW} }}
    series(granularity: $granularity) {{ start calls creditsConsumed }}
  }} }}
}}"""
POOL = "{ organization { creditPool { consumed allowance remaining } } }"


@dataclass
class Served:
    base: str
    tokens: DemoTokens

    def api(self, token: str, query: str, variables: dict | None = None) -> dict:
        response = httpx.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        return response.json()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """uvicorn on a free loopback port, serving a fresh SQLite file with the demo data."""
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('face') / 'demo.db'}"
    migrate.upgrade(url)
    pepper = Settings(database_url=url).token_pepper.get_secret_value()

    async def seed() -> DemoTokens:
        engine = create_engine(url)
        try:
            return await load_demo(engine, now=datetime.now(UTC), pepper=pepper)
        finally:
            await engine.dispose()

    tokens = asyncio.run(seed())
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={
            **os.environ,
            "CREDITLENS_DATABASE_URL": url,
            # The alerts test points its webhook at this machine.
            "CREDITLENS_WEBHOOK_ALLOW_INSECURE": "true",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not answer within 60 s"
            time.sleep(0.2)
        yield Served(base, tokens)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Browser]:
    """One Chromium for the module: Debian's, never a Playwright download. Started after
    the server: Playwright's sync API runs an event loop that asyncio.run cannot share."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make install does)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@dataclass
class Watched:
    """A page whose outside requests are aborted and whose console errors are kept."""

    page: Page
    outside: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert self.outside == [], f"requests to other origins: {self.outside}"
        assert self.errors == [], f"console errors: {self.errors}"

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)


@pytest.fixture
def open_page(browser: Browser, served: Served) -> Iterator:
    contexts = []

    def make(viewport: dict[str, int] = DESKTOP, locale: str = "en-US") -> Watched:
        context = browser.new_context(viewport=viewport, locale=locale)
        contexts.append(context)
        page = context.new_page()
        watched = Watched(page)

        def route(route: Route) -> None:
            if route.request.url.startswith(served.base + "/"):
                route.continue_()
            else:
                watched.outside.append(route.request.url)
                route.abort()

        context.route("**/*", route)
        page.on("console", lambda m: m.type == "error" and watched.errors.append(m.text))
        page.on("pageerror", lambda e: watched.errors.append(str(e)))
        return watched

    yield make
    for context in contexts:
        context.close()


def wait_for_report(page: Page, range_: str, granularity: str, key: str, zone: str) -> None:
    loaded = f"{range_}|{granularity}|{key}|{zone}"
    page.wait_for_selector(f'#report[data-loaded="{loaded}"]:not([aria-busy])', timeout=20_000)


def rows_of(page: Page, table_id: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#{table_id} tbody tr",
        "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))",
    )


def assert_rows(shown: list[list[str]], api_rows: list[dict], name) -> None:  # type: ignore[no-untyped-def]
    assert len(shown) == len(api_rows)
    for cells, row in zip(shown, api_rows, strict=True):
        assert cells[:3] == [name(row), f"{row['calls']:,}", f"{row['creditsConsumed']:,}"]
        assert cells[3].endswith("%")
        assert abs(float(cells[3][:-1]) - row["percentOfTotal"]) <= 0.051


OUTCOME_NAMES = {
    "SUCCESS": "Success",
    "NO_RESULT": "No result (404 or nothing found)",
    "RATE_LIMITED": "Rate limited (429)",
    "CLIENT_ERROR": "Client error (4xx)",
    "SERVER_ERROR": "Server error (5xx)",
}


def outcome_name(row: dict) -> str:
    return OUTCOME_NAMES[row["outcome"]]


def user_name(row: dict) -> str:
    return row["user"]["name"] if row["user"] else "Not attributed to a user"


def assert_page_matches_api(
    page: Page, served: Served, range_: str, granularity: str, key: str, zone: str
) -> None:
    wait_for_report(page, range_, granularity, key, zone)
    variables = {
        "timeRange": {"preset": range_, "timezone": zone},
        "keyId": key or None,
        "granularity": granularity,
    }
    usage = served.api(served.tokens.admin, USAGE, variables)["data"]["organization"]["usage"]
    assert page.inner_text("#sum-credits") == f"{usage['creditsConsumed']:,}"
    assert page.inner_text("#sum-calls") == f"{usage['calls']:,}"
    assert_rows(rows_of(page, "endpoint-table"), usage["byEndpoint"], lambda r: r["endpoint"])
    assert_rows(rows_of(page, "source-table"), usage["bySource"], lambda r: r["source"])
    assert_rows(rows_of(page, "user-table"), usage["byUser"], user_name)
    assert_rows(rows_of(page, "outcome-table"), usage["byOutcome"], outcome_name)
    wasted = sum(r["creditsConsumed"] for r in usage["byOutcome"] if r["outcome"] == "NO_RESULT")
    assert page.inner_text("#outcome-no-result").startswith(f"{wasted:,}")
    series = rows_of(page, "series-table")
    assert [cells[1:] for cells in series] == [
        [f"{b['calls']:,}", f"{b['creditsConsumed']:,}"] for b in usage["series"]
    ]
    bars = page.evaluate("document.querySelectorAll('#chart canvas').length")
    assert bars == 1


def assert_pool(page: Page, served: Served) -> None:
    pool = served.api(served.tokens.admin, POOL)["data"]["organization"]["creditPool"]
    for name in ("consumed", "allowance", "remaining"):
        assert page.inner_text(f"#pool-{name}") == f"{pool[name]:,}"


def test_admin_sees_the_apis_figures_across_controls_tabs_and_key_filter(open_page, served):
    watched = open_page()
    page = watched.page
    page.goto(f"{served.base}/#token={served.tokens.admin}")
    wait_for_report(page, "LAST_30_DAYS", "DAY", "", "Europe/Berlin")
    assert "token" not in page.url  # read, then removed from the address bar
    first_table_ms = page.evaluate(
        "performance.getEntriesByName('creditlens:first-table')[0].startTime"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps({"first_table_ms": first_table_ms}))
    assert page.inner_text("#org-name") == "Acme Revenue Ops"
    assert page.inner_text("#org-plan").upper() == "PRO"
    assert page.get_by_role("table", name="API credit usage").is_visible()
    assert_pool(page, served)
    assert_page_matches_api(page, served, "LAST_30_DAYS", "DAY", "", "Europe/Berlin")
    watched.shot("dashboard-desktop")

    # Tabs by keyboard: the selected tab is the only one in the Tab order.
    page.focus("#tab-source")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-user", "aria-selected") == "true"
    assert page.is_visible("#user-table")
    assert not page.is_visible("#source-table")
    assert "tab=user" in page.url

    page.select_option("#range", "LAST_7_DAYS")
    page.click("label[for=g-week]")
    assert_page_matches_api(page, served, "LAST_7_DAYS", "WEEK", "", "Europe/Berlin")

    page.select_option("#range", "LAST_90_DAYS")
    page.select_option("#key", label="Enrichment job")
    assert_page_matches_api(page, served, "LAST_90_DAYS", "WEEK", "key_enrichment", "Europe/Berlin")
    assert_pool(page, served)  # the pool is the organization's, whatever the key filter

    page.select_option("#timezone", "Asia/Kolkata")
    page.click("label[for=g-month]")
    assert_page_matches_api(page, served, "LAST_90_DAYS", "MONTH", "key_enrichment", "Asia/Kolkata")
    assert "tz=Asia%2FKolkata" in page.url
    assert "key=key_enrichment" in page.url
    watched.shot("dashboard-filtered")

    page.reload()  # the settings live in the URL, the token in this tab's sessionStorage
    assert_page_matches_api(page, served, "LAST_90_DAYS", "MONTH", "key_enrichment", "Asia/Kolkata")
    assert page.get_attribute("#tab-user", "aria-selected") == "true"
    page.go_back()  # Back undoes the last change
    assert_page_matches_api(page, served, "LAST_90_DAYS", "WEEK", "key_enrichment", "Asia/Kolkata")
    watched.assert_clean()


SPIKES = """query($timeRange: TimeRangeInput!, $granularity: Granularity!) {
  organization { usage(timeRange: $timeRange) { spikes(granularity: $granularity) {
    start creditsConsumed expectedCredits excessCredits
    drivers { dimension value apiKey { name } excessCredits }
  } } }
}"""


def test_spikes_are_marked_on_the_chart_and_explained(open_page, served):
    watched = open_page()
    page = watched.page
    page.goto(f"{served.base}/#token={served.tokens.admin}")
    wait_for_report(page, "LAST_30_DAYS", "DAY", "", "Europe/Berlin")
    variables = {"timeRange": {"preset": "LAST_30_DAYS"}, "granularity": "DAY"}
    spikes = served.api(served.tokens.admin, SPIKES, variables)["data"]["organization"]["usage"][
        "spikes"
    ]
    assert spikes  # the demo's spike day
    assert page.get_attribute("#chart", "data-spikes") == str(len(spikes))
    items = page.eval_on_selector_all("#spike-list li", "items => items.map(i => i.textContent)")
    assert len(items) == len(spikes)
    for text, spike in zip(items, spikes, strict=True):
        assert f"{spike['creditsConsumed']:,} credits" in text
        assert f"expected {spike['expectedCredits']:,}" in text
    biggest = max(range(len(spikes)), key=lambda at: spikes[at]["excessCredits"])
    assert "API key: Enrichment job" in items[biggest]
    assert "Endpoint: prospecting/contact/enrich" in items[biggest]
    assert "Spikes marked" in page.get_attribute("#chart", "aria-label")
    # The CSV of the view: the same controls, the endpoint table per bucket.
    href = page.get_attribute("#download-csv", "href")
    assert href.startswith("/v1/exports/usage.csv?")
    for part in ("preset=LAST_30_DAYS", "timezone=Europe%2FBerlin", "groupBy=endpoint"):
        assert part in href
    assert "granularity=DAY" in href
    # The button saves the export of this view, fetched with the token.
    with page.expect_download() as started:
        page.click("#download-csv")
    saved = started.value
    assert saved.suggested_filename.startswith("usage-acme-")
    assert saved.suggested_filename.endswith("-by-endpoint-day.csv")
    header = Path(saved.path()).read_text(encoding="utf-8").splitlines()[0]
    assert header == "bucket_start,bucket_end,endpoint,calls,credits_consumed,percent_of_total"
    # Hourly: marks without drivers (their cost would multiply by every hour of the range).
    page.click("label[for=g-hour]")
    wait_for_report(page, "LAST_30_DAYS", "HOUR", "", "Europe/Berlin")
    assert page.get_attribute("#chart", "data-spikes") is not None
    assert "granularity=HOUR" in page.get_attribute("#download-csv", "href")
    assert "not available" not in page.inner_text("#spike-note")
    watched.shot("dashboard-spikes")
    watched.assert_clean()


def test_a_range_without_calls_shows_the_empty_state(open_page, served):
    watched = open_page()
    page = watched.page
    # The legacy key was revoked 30 days ago: nothing in the last 7 days.
    page.goto(f"{served.base}/?range=LAST_7_DAYS&key=key_legacy#token={served.tokens.admin}")
    wait_for_report(page, "LAST_7_DAYS", "DAY", "key_legacy", "Europe/Berlin")
    variables = {
        "timeRange": {"preset": "LAST_7_DAYS"},
        "keyId": "key_legacy",
        "granularity": "DAY",
    }
    usage = served.api(served.tokens.admin, USAGE, variables)["data"]["organization"]["usage"]
    assert usage["byEndpoint"] == []
    assert page.get_by_text("No API calls in this time range").first.is_visible()
    assert rows_of(page, "endpoint-table") == []
    assert page.inner_text("#sum-credits") == "0"
    watched.shot("dashboard-empty")
    watched.assert_clean()


@pytest.mark.parametrize("who", ["member", "free_admin"], ids=["member", "free-admin"])
def test_members_and_free_admins_see_the_apis_message(open_page, served, who):
    token = getattr(served.tokens, who)
    refusal = served.api(token, POOL)["errors"][0]
    watched = open_page()
    page = watched.page
    page.goto(served.base)
    page.get_by_label("Access token").fill(token)
    page.keyboard.press("Enter")
    page.wait_for_selector("#notice:not([hidden])", timeout=20_000)
    assert page.inner_text("#notice-message") == refusal["message"]
    assert refusal["extensions"]["code"] in page.inner_text("#notice-code")
    assert not page.is_visible("#dashboard")
    watched.shot(f"dashboard-{who}")
    watched.assert_clean()


def test_phone_layout_fits_the_screen_with_bars(open_page, served):
    watched = open_page(MOBILE, locale="de-DE")
    page = watched.page
    page.goto(f"{served.base}/#token={served.tokens.admin}")
    wait_for_report(page, "LAST_30_DAYS", "DAY", "", "Europe/Berlin")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= MOBILE["width"]
    for selector in ("#endpoint-table", "#endpoint-table .share-bar", "#range", "#key"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= MOBILE["width"]
        assert box["height"] > 0
    # German separators, exact digits: 11.607, not 11,607.
    credits = served.api(
        served.tokens.admin,
        USAGE,
        {"timeRange": {"preset": "LAST_30_DAYS"}, "granularity": "DAY"},
    )["data"]["organization"]["usage"]["creditsConsumed"]
    assert page.inner_text("#sum-credits") == f"{credits:,}".replace(",", ".")
    watched.shot("dashboard-phone")
    watched.assert_clean()


def test_graphiql_renders_offline_and_runs_a_query(open_page, served):
    watched = open_page()
    page = watched.page
    page.goto(f"{served.base}/graphql")
    page.wait_for_selector(".graphiql-container .graphiql-query-editor", timeout=20_000)
    assert "creditPool" in page.inner_text(".graphiql-query-editor")
    assert "Authorization" in page.inner_text(".graphiql-editor-tool")
    # Signed in on the dashboard, the same tab's GraphiQL gets the token in its headers.
    page.goto(f"{served.base}/#token={served.tokens.admin}")
    wait_for_report(page, "LAST_30_DAYS", "DAY", "", "Europe/Berlin")
    page.goto(f"{served.base}/graphql")
    page.wait_for_selector(".graphiql-execute-button", timeout=20_000)
    page.click(".graphiql-execute-button")
    # A locator, not wait_for_function: the page's CSP forbids the eval that one would need.
    page.locator(".result-window", has_text="Acme Revenue Ops").wait_for(timeout=20_000)
    result = page.inner_text(".result-window")
    assert '"endpointUsage"' in result
    assert "errors" not in result
    watched.shot("graphiql")
    watched.assert_clean()


def test_the_pool_and_report_follow_an_ingest_live(open_page, served):
    """The usageUpdates subscription: an ingest shows without reloading the page. (Last in
    the module: it adds an event to the shared demo data; no test compares a fixed figure.)"""
    watched = open_page()
    page = watched.page
    page.goto(f"{served.base}/#token={served.tokens.admin}")
    wait_for_report(page, "LAST_30_DAYS", "DAY", "", "Europe/Berlin")
    before = page.inner_text("#pool-consumed")
    event = {
        "id": f"live-{time.time_ns()}",
        "organization": "acme",
        "source": "browser-test",
        "endpoint": "/v2/live",
        "status": 200,
        "credits": 1234,
        "timestamp": datetime.now(UTC).isoformat(),
    }
    response = httpx.post(
        f"{served.base}/v1/events",
        json=[event],
        headers={"Authorization": f"Bearer {served.tokens.ingest}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    pool = served.api(served.tokens.admin, POOL)["data"]["organization"]["creditPool"]
    assert f"{pool['consumed']:,}" != before
    page.locator("#pool-consumed", has_text=f"{pool['consumed']:,}").wait_for(timeout=20_000)
    page.locator("#endpoint-table", has_text="/v2/live").wait_for(timeout=20_000)
    watched.assert_clean()


CREATE_ALERT = """
mutation($input: CreateAlertInput!) { createAlert(input: $input) { alert { id } } }
"""
ALERTS = """{ organization { alerts { id name state effectiveThresholdCredits
  deliveries(first: 1) { status } } } }"""


def test_the_alerts_panel_lists_the_apis_alerts(open_page, served):
    created = served.api(
        served.tokens.admin,
        CREATE_ALERT,
        {
            "input": {
                "name": "Daily burn",
                "window": "DAY",
                "thresholdCredits": 123456,
                "webhookUrl": "http://127.0.0.1:9/hooks/credits",
            }
        },
    )
    alert_id = created["data"]["createAlert"]["alert"]["id"]
    alerts = served.api(served.tokens.admin, ALERTS)["data"]["organization"]["alerts"]
    alert = next(item for item in alerts if item["id"] == alert_id)
    watched = open_page()
    page = watched.page
    page.goto(f"{served.base}/#token={served.tokens.admin}")
    row = page.locator(f"#alerts-table tr[data-alert-id='{alert_id}']")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "Daily burn"
    assert cells[1] == "All API keys"
    assert cells[2] == f"{alert['effectiveThresholdCredits']:,} credits per day"
    assert cells[3] == alert["state"]
    assert cells[4] == "None yet"
    assert page.get_by_role("table", name="Alerts").is_visible()
    watched.shot("dashboard-alerts")
    watched.assert_clean()
