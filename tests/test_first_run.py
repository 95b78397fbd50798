"""A first run without stumbles: the CLI's one-line answers, CORS preflights, request-body
errors that say where, NDJSON errors with their lines, and what `serve --demo` prints."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from app.settings import Settings
from tests.factories import event, make_ingest_token, make_tenant

CLI = Path(sys.executable).parent / "creditlens"
COMMANDS = [
    ("org", "create", "--slug", "first", "--name", "First"),
    ("token", "revoke", "1"),
    ("rollups", "rebuild"),
    ("ingest", "EVENTS"),
]
COMMAND_IDS = ["org-create", "token-revoke", "rollups-rebuild", "ingest"]


def run(database_url: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDITLENS_DATABASE_URL": database_url}
    return subprocess.run(
        [str(CLI), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _args(command: tuple[str, ...], tmp_path: Path) -> list[str]:
    events = tmp_path / "events.ndjson"
    events.write_text("")
    return [str(events) if arg == "EVENTS" else arg for arg in command]


def assert_one_line(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_cli_on_a_missing_sqlite_file_says_so_and_leaves_no_file(tmp_path, command):
    missing = tmp_path / "nowhere.db"
    done = run(f"sqlite+aiosqlite:///{missing}", *_args(command, tmp_path))
    assert_one_line(done, str(missing), "does not exist", "creditlens migrate")
    assert not missing.exists()
    assert list(tmp_path.glob("nowhere.db*")) == []


@pytest.mark.parametrize("command", COMMANDS, ids=COMMAND_IDS)
def test_cli_on_an_unmigrated_database_names_it_and_creditlens_migrate(
    scratch_url, tmp_path, command
):
    if scratch_url.startswith("sqlite"):
        Path(scratch_url.split(":///", 1)[1]).touch()
    done = run(scratch_url, *_args(command, tmp_path))
    assert_one_line(done, "is not migrated", "creditlens migrate")


def test_migrate_on_an_unreachable_server_is_one_line():
    done = run("postgresql+asyncpg://postgres@127.0.0.1:1/nothing", "migrate")
    assert_one_line(done, "127.0.0.1:1/nothing", "CREDITLENS_DATABASE_URL")


@pytest.mark.parametrize(
    "path", [("org", "create"), ("token", "create"), ("ingest",)], ids=["org", "token", "ingest"]
)
def test_help_shows_json_and_help_as_flags(path):
    done = subprocess.run(
        [str(CLI), *path, "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    assert re.search(r"^\s+--json\s+Print one JSON object\.$", done.stdout, re.M), done.stdout
    assert re.search(r"^\s+--help\s+Show this message and exit\.$", done.stdout, re.M)
    assert "<bool>" not in done.stdout


PREFLIGHT = {"origin": "https://elsewhere.example", "access-control-request-method": "POST"}


async def test_preflight_without_allowed_origins_names_the_setting(client):
    response = await client.options("/graphql", headers=PREFLIGHT)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["errors"][0]
    assert "CREDITLENS_CORS_ALLOWED_ORIGINS" in error["message"]
    assert "https://elsewhere.example" in error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_from_an_origin_not_allowed_names_the_setting(settings, clock):
    from app.main import create_app

    configured = settings.model_copy(update={"cors_allowed_origins": ["https://ok.example"]})
    application = create_app(configured, clock=clock)
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        refused = await http.options("/graphql", headers=PREFLIGHT)
        allowed = await http.options(
            "/graphql", headers={**PREFLIGHT, "origin": "https://ok.example"}
        )
    await application.state.engine.dispose()
    assert refused.status_code == 400
    assert "CREDITLENS_CORS_ALLOWED_ORIGINS" in refused.json()["errors"][0]["message"]
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://ok.example"


async def test_options_without_a_preflight_is_a_graphql_shaped_405(client):
    response = await client.options("/graphql")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


@pytest.fixture
async def admin_token(engine, clock) -> str:
    return (await make_tenant(engine, now=clock())).token


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"query": "{ viewer { name } }",\n "variables": {,}}', "line 2, column 16"),
        (b'{"query": 5}', "query must be a string"),
        (b'{"query": ["{ viewer { name } }"]}', "query must be a string"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"query": "{ viewer { name } }", "n": ' + b"9" * 5000 + b"}", "a number too long"),
    ],
    ids=["malformed", "number-query", "list-query", "deep-nesting", "huge-number"],
)
async def test_a_bad_body_says_what_and_where(client, admin_token, body, says):
    response = await client.post(
        "/graphql",
        content=body,
        headers={"Authorization": f"Bearer {admin_token}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert says in error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"


def _ndjson(*lines: object) -> bytes:
    return "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines).encode()


async def test_ndjson_errors_name_their_lines_and_a_malformed_line_hides_nothing(
    client, engine, clock
):
    tenant = await make_tenant(engine, now=clock())
    token = await make_ingest_token(engine, now=clock())
    at = clock() - timedelta(hours=1)
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/x-ndjson"}
    good = event(tenant.slug, at)
    bad = event(tenant.slug, at, credits=-1)

    # Lines 1, 2 blank; 3 good; 4 blank; 5 bad credits; 6 malformed; 7 bad credits.
    body = _ndjson("", "", good, "", bad, '{"id": ', event(tenant.slug, at, credits=-2))
    refused = await client.post("/v1/events", content=body, headers=headers)
    assert refused.status_code == 400
    answer = refused.json()
    assert (answer["line"], answer["column"]) == (6, 8)
    assert [(e["line"], e["field"]) for e in answer["errors"]] == [
        (5, "credits"),
        (6, ""),
        (7, "credits"),
    ]

    invalid = _ndjson("", good, "", bad)
    rejected = await client.post("/v1/events", content=invalid, headers=headers)
    assert rejected.status_code == 422
    assert [(e["line"], e["index"], e["field"]) for e in rejected.json()["errors"]] == [
        (4, 1, "credits")
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_demo_prints_the_dashboard_link_graphiql_and_the_tokens(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"
    port = _free_port()
    process = subprocess.Popen(
        [str(CLI), "serve", "--demo", "--port", str(port)],
        env={**os.environ, "CREDITLENS_DATABASE_URL": url, "CREDITLENS_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    lines: list[str] = []
    # A thread reads, so the wait below stays bounded even if the process falls silent.
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("CLI on this database" in line for line in lines):
            assert process.poll() is None, f"serve --demo exited: {''.join(lines)!r}"
            assert time.monotonic() < deadline, f"no banner within 120 s: {''.join(lines)!r}"
            time.sleep(0.1)
        printed = "".join(lines)
        link = re.search(rf"{re.escape(base)}/#token=(cl_\S+)", printed)
        assert link is not None, printed
        assert f"{base}/graphql" in printed
        for who in ("admin of Acme", "member of Acme", "admin of Hobby", "ingest"):
            assert re.search(rf"{who}.*cl_\S+", printed), who
        assert f"CREDITLENS_DATABASE_URL={url}" in printed
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.post(
                    f"{base}/graphql",
                    json={"query": "{ viewer { name role } }"},
                    headers={"Authorization": f"Bearer {link.group(1)}"},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert answer.json()["data"]["viewer"] == {"name": "Ada Admin", "role": "ADMIN"}
        assert httpx.get(f"{base}/", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=15)
        reader.join(timeout=15)
        if process.stdout is not None:
            process.stdout.close()


def test_settings_default_database_is_a_file_in_the_working_directory():
    # The README tells readers which database the CLI uses; keep it true.
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    default = Settings.model_fields["database_url"].default
    assert default in readme
