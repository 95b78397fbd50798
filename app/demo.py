"""Demo data that looks like a real customer: keys, users, sources, 90 days of traffic.

It shows what the dashboard is for (docs/spikes.md): one spike day, twelve days ago, driven
by one key (``key_enrichment``) on one endpoint (``prospecting/contact/enrich``); and one key
(``key_dedupe``) that burns most of its credits on calls that found nothing (404s, and 200s
sent with ``"outcome": "no_result"``, charged in full).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from db import data_version
from db.engine import writing
from db.ingestion import ingest
from db.queries.directory import create_organization, create_user
from db.queries.tokens import create_token
from db.tables import api_keys
from domain.scopes import TokenScope

# (endpoint, credits when found, share of traffic). A call that finds nothing still costs 1.
ENDPOINTS = (
    ("/v2/person", 1, 0.34),
    ("/v2/company", 1, 0.18),
    ("prospecting/contact/enrich", 5, 0.22),
    ("prospecting/company/search", 2, 0.16),
    ("/v2/person/bulk", 10, 0.04),
    ("/v2/email/verify", 0, 0.06),
)
KEYS = (
    ("key_crm_sync", "CRM sync", "crm_integration", 0.45),
    ("key_enrichment", "Enrichment job", "api", 0.30),
    ("key_prospecting", "Prospecting tool", "browser_extension", 0.20),
    ("key_legacy", "Legacy script (revoked)", "api", 0.05),
    ("key_dedupe", "Dedupe checker", "crm_integration", 0.08),
)
# The dedupe checker looks up people the CRM already has: most lookups find nothing.
DEDUPE_FOUND = 0.25
KEY_NAMES = {key: name for key, name, _, _ in KEYS}
PEOPLE = (
    ("u_lena", "Lena Vogel"),
    ("u_marc", "Marc Dubois"),
    ("u_priya", "Priya Natarajan"),
    ("u_tom", "Tom Becker"),
)


@dataclass(frozen=True, slots=True)
class DemoTokens:
    admin: str
    member: str
    free_admin: str
    ingest: str


def demo_banner(tokens: DemoTokens, *, base_url: str, database_url: str) -> str:
    """What `serve --demo` prints once: where to click, the tokens, how to reach the data."""
    return (
        "\nDemo data loaded. Tokens (shown once):\n"
        f"  admin of Acme (PRO plan)   {tokens.admin}\n"
        f"  member of Acme             {tokens.member}\n"
        f"  admin of Hobby (FREE plan) {tokens.free_admin}\n"
        f"  ingest                     {tokens.ingest}\n"
        f"\nDashboard, signed in as the Acme admin: {base_url}/#token={tokens.admin}\n"
        f"GraphiQL: {base_url}/graphql  (put a token in its Headers tab: "
        '{"Authorization": "Bearer <token>"})\n'
        f"CLI on this database: CREDITLENS_DATABASE_URL={database_url} creditlens --help\n"
    )


def _events(now: datetime, rng: random.Random) -> list[dict[str, object]]:
    events: list[dict[str, object]] = []
    start = (now - timedelta(days=90)).replace(minute=0, second=0, microsecond=0)
    spike_day = (now - timedelta(days=12)).date()
    hour = start
    number = 0
    while hour < now:
        weekday = hour.weekday() < 5
        local_hour = (hour.hour + 1) % 24  # roughly Berlin working hours
        busy = 8 <= local_hour < 19
        rate = (14 if busy else 2) * (1.0 if weekday else 0.25)
        if hour.date() == spike_day and busy:
            rate *= 6  # a bulk enrichment run gone wild
        for _ in range(rng.randint(int(rate * 0.6), int(rate * 1.4) + 1)):
            endpoint, cost, _ = rng.choices(ENDPOINTS, weights=[e[2] for e in ENDPOINTS])[0]
            key_id, _, source, _ = rng.choices(KEYS, weights=[k[3] for k in KEYS])[0]
            if hour.date() == spike_day and busy and rng.random() < 0.7:
                endpoint, cost, key_id, source = (
                    "prospecting/contact/enrich",
                    5,
                    "key_enrichment",
                    "api",
                )
            if key_id == "key_legacy" and hour > now - timedelta(days=30):
                key_id = "key_crm_sync"
            if key_id == "key_dedupe":
                endpoint, cost = "/v2/person/match", 2
            found = rng.random() < (DEDUPE_FOUND if key_id == "key_dedupe" else 0.8)
            number += 1
            at = hour + timedelta(seconds=rng.randrange(3600))
            if at >= now:
                continue
            event: dict[str, object] = {
                "id": f"demo-{number}",
                "organization": "acme",
                "api_key": {"id": key_id, "name": KEY_NAMES[key_id]},
                "source": source,
                "endpoint": endpoint,
                "status": 200 if found else 404,
                "credits": cost if found else min(cost, 1),
                "timestamp": at.isoformat(),
            }
            if key_id == "key_dedupe" and not found and rng.random() < 0.5:
                # The match endpoint answers 200 with an empty match and charges it in full.
                event["status"], event["credits"], event["outcome"] = 200, cost, "no_result"
            if source != "crm_integration":
                person = rng.choice(PEOPLE)
                event["user"] = {"id": person[0], "name": person[1]}
            events.append(event)
        hour += timedelta(hours=1)
    return events


async def load_demo(engine: AsyncEngine, *, now: datetime, pepper: str) -> DemoTokens:
    """Create the demo organizations, users, tokens and traffic; returns the tokens."""
    async with writing(engine) as conn:
        acme = await create_organization(
            conn,
            slug="acme",
            name="Acme Revenue Ops",
            plan="PRO",
            timezone="Europe/Berlin",
            credit_allowance=60_000,
            billing_cycle_anchor=(now - timedelta(days=200)).replace(
                hour=0, minute=0, second=0, microsecond=0
            ),
            now=now,
        )
        hobby = await create_organization(
            conn,
            slug="hobby",
            name="Hobby Hacker",
            plan="FREE",
            timezone="America/New_York",
            credit_allowance=500,
            billing_cycle_anchor=(now - timedelta(days=40)).replace(
                hour=0, minute=0, second=0, microsecond=0
            ),
            now=now,
        )
        admin = await create_user(
            conn,
            organization_id=acme,
            external_id="u_ada",
            name="Ada Admin",
            email="ada@acme.example",
            role="ADMIN",
            now=now,
        )
        member = await create_user(
            conn,
            organization_id=acme,
            external_id="u_max",
            name="Max Member",
            email="max@acme.example",
            role="MEMBER",
            now=now,
        )
        free_admin = await create_user(
            conn,
            organization_id=hobby,
            external_id="u_fay",
            name="Fay Free",
            email="fay@hobby.example",
            role="ADMIN",
            now=now,
        )
        tokens = [
            (await create_token(conn, pepper=pepper, scope=TokenScope.USER, user_id=user, now=now))[
                1
            ]
            for user in (admin, member, free_admin)
        ]
        ingest_token = (
            await create_token(conn, pepper=pepper, scope=TokenScope.INGEST, user_id=None, now=now)
        )[1]
    events = _events(now, random.Random(20261125))
    for start in range(0, len(events), 1000):
        await ingest(engine, events[start : start + 1000], now=now)
    async with writing(engine) as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.organization_id == acme, api_keys.c.external_id == "key_legacy")
            .values(revoked_at=now - timedelta(days=30))
        )
        await data_version.bump(conn, [acme])  # a key's state is in answers
    return DemoTokens(tokens[0], tokens[1], tokens[2], ingest_token)
