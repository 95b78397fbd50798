"""``/metrics`` behind a token when ``metrics_token`` is set (issue 10, class 10)."""

from __future__ import annotations

import httpx
import pytest

from app.main import create_app
from app.settings import Settings

TOKEN = "metrics-secret-of-this-deployment"


@pytest.fixture
async def protected(clean_database, clock):
    application = create_app(
        Settings(database_url=clean_database, metrics_token=TOKEN), clock=clock
    )
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield client


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["none", "wrong", "not-bearer"],
)
async def test_metrics_need_the_token_when_one_is_set(protected, headers):
    response = await protected.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert "creditlens_requests_total" not in response.text


async def test_metrics_answer_with_the_token(protected):
    await protected.get("/healthz")
    response = await protected.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert 'creditlens_requests_total{path="/healthz",status="200"} 1' in response.text


async def test_metrics_are_open_without_the_setting(client):
    assert (await client.get("/metrics")).status_code == 200
