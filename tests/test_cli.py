"""The `creditlens` command as a script would use it: --json output, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import graphql

CLI = Path(sys.executable).parent / "creditlens"


def run(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CREDITLENS_DATABASE_URL": database_url}
    return subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def run_json(database_url: str, *args: str) -> dict:
    done = run(database_url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_scripts_can_create_an_org_a_user_and_a_working_token(client, database_url):
    org = run_json(
        database_url,
        "org",
        "create",
        "--slug",
        "cli-co",
        "--name",
        "CLI Co",
        "--plan",
        "STARTER",
        "--timezone",
        "Asia/Kolkata",
    )
    user = run_json(
        database_url,
        "user",
        "create",
        "--org",
        "cli-co",
        "--name",
        "Ada",
        "--email",
        "ada@cli.example",
        "--role",
        "ADMIN",
    )
    token = run_json(database_url, "token", "create", "--user", str(user["id"]))
    assert token["token"].startswith("cl_")
    assert len(token["token"]) >= 3 + 43  # 256 random bits in URL-safe base64

    query = "{ viewer { name role } organization { id plan timezone } }"
    body = (await graphql(client, token["token"], query)).json()
    assert body["data"] == {
        "viewer": {"name": "Ada", "role": "ADMIN"},
        "organization": {"id": str(org["id"]), "plan": "STARTER", "timezone": "Asia/Kolkata"},
    }

    revoked = run_json(database_url, "token", "revoke", str(token["id"]))
    assert revoked == {"id": token["id"], "revoked": True}
    assert (await graphql(client, token["token"], query)).status_code == 401


async def test_ingest_token_is_made_with_the_ingest_flag(client, database_url):
    token = run_json(database_url, "token", "create", "--ingest")
    response = await client.post(
        "/v1/events", json=[], headers={"Authorization": f"Bearer {token['token']}"}
    )
    assert response.json() == {"accepted": 0, "duplicates": 0}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["org", "create", "--slug", "x", "--name", "X", "--plan", "GOLD"], "--plan"),
        (["org", "create", "--slug", "x", "--name", "X", "--timezone", "Mars/Base"], "time zone"),
        (["user", "create", "--org", "nowhere", "--name", "A"], "no organization"),
        (["user", "create", "--org", "x", "--name", "A", "--role", "OWNER"], "--role"),
        (["token", "create"], "exactly one"),
        (["token", "create", "--user", "1", "--ingest"], "exactly one"),
        (["token", "revoke", "999999"], "no active token"),
    ],
    ids=[
        "bad-plan",
        "bad-zone",
        "unknown-org",
        "bad-role",
        "no-scope",
        "two-scopes",
        "revoke-unknown",
    ],
)
def test_bad_arguments_exit_2_with_a_message(database_url, clean_database, args, message):
    done = run(database_url, *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_duplicate_slug_is_refused(database_url, clean_database):
    run_json(database_url, "org", "create", "--slug", "twice", "--name", "A")
    done = run(database_url, "org", "create", "--slug", "twice", "--name", "B")
    assert done.returncode == 2
    assert "exists" in done.stderr
