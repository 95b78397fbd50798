"""The graphql-http GraphQL-over-HTTP audit, against a real ``creditlens serve``.

Needs node (skipped without it); installs the pinned npm packages with ``npm ci`` when they
are missing. Tokens are made with the CLI, as an operator would.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT / "conformance"
CLI = [str(Path(sys.executable).parent / "creditlens")]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cli(env, *args) -> dict:
    out = subprocess.run(
        [*CLI, *args, "--json"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    for _ in range(200):
        if server.poll() is not None:
            raise AssertionError(f"server exited: {server.stderr.read()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not come up")


def test_the_graphql_over_http_audit_finds_no_error_and_no_warning(clean_database):
    if not (CONFORMANCE / "node_modules" / "graphql-http").exists():
        subprocess.run(
            ["npm", "ci", "--prefix", str(CONFORMANCE), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
        )
    env = {**os.environ, "CREDITLENS_DATABASE_URL": clean_database}
    cli(env, "org", "create", "--slug", "audit", "--name", "Audit", "--plan", "PRO")
    user = cli(env, "user", "create", "--org", "audit", "--name", "Auditor", "--role", "ADMIN")
    token = cli(env, "token", "create", "--user", str(user["id"]))["token"]
    port = free_port()
    with subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", server)
            audit = subprocess.run(
                ["node", str(CONFORMANCE / "audit.mjs")],
                env={
                    **env,
                    "CREDITLENS_URL": f"http://127.0.0.1:{port}/graphql",
                    "CREDITLENS_TOKEN": token,
                },
                capture_output=True,
                text=True,
            )
        finally:
            server.terminate()
            server.communicate(timeout=30)
    summary = json.loads(audit.stdout)
    assert summary["error"] == 0, summary["notOk"]
    assert summary["warn"] == 0, summary["notOk"]  # README lists any accepted warning
    assert summary["ok"] >= 60
