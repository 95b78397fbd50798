"""Slow and vanishing clients against a real server (issue 10, classes 3 and 10).

A real ``creditlens serve`` process with a small pool and short timeouts; the clients are
raw sockets that send their headers or body a byte at a time, or go away mid-body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.factories import make_tenant
from tests.live_server import LiveServer, live_server

pytestmark = pytest.mark.slow

SLOW_CLIENTS = 20  # more than the pool holds on either database (SQLite: 5 + 10 overflow)
TIMEOUT = 2  # header and body timeouts of the server under test, in seconds
QUERY = b'{"query": "{ viewer { id } }"}'


def _head(token: str, length: int) -> bytes:
    return (
        "POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _trickle(
    server: LiveServer, data: bytes, every: float, *, prefix: bytes = b"", read_on: bool = False
) -> tuple[bytes, float]:
    """Send ``prefix`` at once, then ``data`` one byte every ``every`` s until the server
    answers (or, ``read_on``, until it closes); return what it sent back and when (seconds
    after connecting)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    started = time.monotonic()
    answer = b""
    writer.write(prefix)
    await writer.drain()

    async def read() -> None:
        nonlocal answer
        # A reset after the answer is the server closing with our bytes unread: the end.
        with contextlib.suppress(ConnectionResetError):
            while chunk := await reader.read(65536):
                answer += chunk

    reading = asyncio.create_task(read())
    try:
        for byte in data:
            if reading.done() or (answer and not read_on):
                break  # answered: a byte sent now would only make the server reset
            try:
                writer.write(bytes([byte]))
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.wait({reading}, timeout=every)
        await asyncio.wait_for(reading, timeout=30)
        return answer, time.monotonic() - started
    finally:
        reading.cancel()
        writer.close()


# Both HTTP parsers `serve` can run: httptools (what it picks when installed) and h11 (its
# fallback, app/http_protocol.py). For h11 the server starts with an `httptools` package
# first on its path that fails to import, as on a machine without it.
PARSERS = ["httptools", "h11"]
NO_HTTPTOOLS = 'raise ImportError("httptools hidden: this server must fall back to h11")\n'


@pytest.fixture(scope="module", params=PARSERS)
def server(request, database_url, tmp_path_factory):
    """One server per parser for the module (starting one takes seconds); no test here
    depends on another's requests."""
    folder = tmp_path_factory.mktemp(f"server-{request.param}")
    environment = {}
    if request.param == "h11":
        (folder / "httptools").mkdir()
        (folder / "httptools" / "__init__.py").write_text(NO_HTTPTOOLS)
        environment["PYTHONPATH"] = str(folder)
    with live_server(
        database_url,
        folder / "server.log",
        environment=environment,
        pool_size=2,
        header_timeout_seconds=TIMEOUT,
        body_timeout_seconds=TIMEOUT,
    ) as running:
        # The parser in use, from the server's own memory map: httptools is a C extension.
        maps = Path(f"/proc/{running.pid}/maps").read_text()
        assert ("httptools" in maps) == (request.param == "httptools")
        yield running


async def test_slow_bodies_do_not_hold_database_connections(server, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    body = QUERY.ljust(200)
    slow = [
        asyncio.create_task(
            _trickle(server, body, every=0.25, prefix=_head(tenant.token, len(body)))
        )
        for _ in range(SLOW_CLIENTS)
    ]
    await asyncio.sleep(1)  # every slow client is connected and its body under way
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        started = time.monotonic()
        response = await client.post(
            "/graphql",
            content=QUERY,
            headers={"Authorization": f"Bearer {tenant.token}", "Content-Type": "application/json"},
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert "viewer" in response.json()["data"]
    # Prompt while 20 bodies trickle; before the fix it waited for the pool (30 s).
    assert elapsed < 5, elapsed
    answers = await asyncio.gather(*slow)
    for answer, seconds in answers:
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"connection: close" in head.lower()
        body_json = json.loads(payload)
        assert body_json["errors"][0]["extensions"]["code"] == "REQUEST_TIMEOUT"
        assert seconds < TIMEOUT + 10


async def test_slow_headers_are_cut_off(server):
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"a" * 100
    answers = await asyncio.gather(*(_trickle(server, head, every=0.25) for _ in range(5)))
    for answer, seconds in answers:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "request_timeout"
        assert seconds < TIMEOUT + 10
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_client_trickling_a_body_answered_without_it_is_cut_off(server):
    """No token: refused at once, without reading the body. Each byte the client goes on
    sending would reset uvicorn's keep-alive timer; the header deadline still holds."""
    head = b"POST /graphql HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"
    answer, seconds = await _trickle(server, b"x" * 200, every=0.25, prefix=head, read_on=True)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert seconds < TIMEOUT + 10


async def test_an_idle_connection_is_closed_without_an_answer(server):
    answer, seconds = await _trickle(server, b"", every=0)
    assert answer == b""
    assert seconds < TIMEOUT + 10


async def test_a_client_gone_mid_body_is_a_disconnect_not_a_server_error(server, engine, clock):
    tenant = await make_tenant(engine, now=clock())
    _, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(_head(tenant.token, 1000) + b'{"query": ')
    await writer.drain()
    await asyncio.sleep(0.5)  # the application is reading the body
    writer.close()
    await writer.wait_closed()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        deadline = time.monotonic() + 10
        while 'path="/graphql"' not in (metrics := (await client.get("/metrics")).text):
            assert time.monotonic() < deadline, metrics
            await asyncio.sleep(0.1)
    assert 'creditlens_requests_total{path="/graphql",status="499"} 1' in metrics
    assert 'status="5' not in metrics
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    [line] = [line for line in lines if line.get("status") == 499]
    assert (line["message"], line["path"]) == ("client disconnected", "/graphql")
    assert "Traceback" not in server.log_text()


async def test_request_headers_over_16_kib_are_refused(server):
    """h11 bounds request headers at 16 KiB; httptools has no bound of its own, so the server
    keeps h11's there too."""
    head = b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Big: " + b"a" * 17_000 + b"\r\n\r\n"
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(head)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        big = {"X-Big": "a" * 15_000}  # under the bound: answered
        assert (await client.get("/healthz", headers=big)).status_code == 200
