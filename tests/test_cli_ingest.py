"""``creditlens ingest FILE``, run as a real process against the test database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import event
from tests.stored_totals import totals

ROOT = Path(__file__).resolve().parent.parent
CREDITLENS = str(ROOT / ".venv" / "bin" / "creditlens")


async def run_cli(database_url: str, *args: str, stdin: bytes | None = None):
    """(exit code, stdout, stderr) of one ``creditlens`` run."""
    process = await asyncio.create_subprocess_exec(
        CREDITLENS,
        *args,
        env={**os.environ, "CREDITLENS_DATABASE_URL": database_url},
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=120)
    return process.returncode, out.decode(), err.decode()


def ndjson(events: list[dict]) -> str:
    return "".join(json.dumps(item) + "\n" for item in events)


def as_csv(events: list[dict]) -> str:
    columns = ["id", "organization", "api_key", "api_key_name", "user", "source"]
    columns += ["endpoint", "status", "credits", "timestamp"]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for item in events:
        row = dict(item)
        key = row.get("api_key")
        if isinstance(key, dict):
            row["api_key"], row["api_key_name"] = key["id"], key.get("name")
        writer.writerow(row)
    return out.getvalue()


def many(slug: str, start, count: int) -> list[dict]:
    return [
        event(
            slug,
            start + timedelta(seconds=30 * i),
            api_key=f"key-{i % 3}",
            user=f"user-{i % 5}",
            endpoint=f"/v2/e{i % 4}",
            credits=i % 3,
        )
        for i in range(count)
    ]


async def test_ndjson_file_is_loaded_with_progress_and_summary(
    tenant, engine, database_url, clock, tmp_path
):
    events = many(tenant.slug, clock() - timedelta(days=1), 2500)
    path = tmp_path / "events.ndjson"
    path.write_text(ndjson(events) + "\n")  # a blank line at the end is fine

    code, out, err = await run_cli(database_url, "ingest", str(path), "--batch-size", "1000")

    assert code == 0, err
    assert out.startswith("accepted 2,500, duplicates 0, in ")
    assert "2,500 events" in err.splitlines()[-1]
    assert "100%" in err.splitlines()[-1]
    stored = await totals(engine)
    assert stored.events == 2500
    assert stored.credits == sum(item["credits"] for item in events)
    assert stored.rollups_match_events()

    # Idempotent: the same file again stores nothing new.
    code, out, _ = await run_cli(database_url, "ingest", str(path), "--json", "-q")
    assert code == 0
    summary = json.loads(out)
    assert (summary["accepted"], summary["duplicates"], summary["processed"]) == (0, 2500, 2500)
    assert await totals(engine) == stored


async def test_csv_file_keeps_names_and_integers(tenant, engine, database_url, clock, tmp_path):
    at = clock() - timedelta(hours=3)
    events = [
        event(tenant.slug, at, api_key={"id": "k1", "name": "Production"}, credits=3),
        event(tenant.slug, at, api_key="k2", user="ann", credits=0, status=404),
        event(tenant.slug, at, api_key=None, source="CRM_Integration", credits=7),
    ]
    path = tmp_path / "events.csv"
    path.write_text(as_csv(events))

    code, out, err = await run_cli(database_url, "ingest", str(path), "--json")

    assert code == 0, err
    assert json.loads(out)["accepted"] == 3
    stored = await totals(engine)
    assert (stored.events, stored.credits, stored.api_keys, stored.users) == (3, 10, 2, 2)
    from sqlalchemy import select

    from db.tables import api_keys, usage_events

    async with engine.connect() as conn:
        names = (await conn.execute(select(api_keys.c.name).order_by(api_keys.c.name))).all()
        sources = (await conn.execute(select(usage_events.c.source))).scalars().all()
    assert [name for (name,) in names] == ["Production", "k2"]
    assert sorted(sources) == ["api", "api", "crm_integration"]


@pytest.mark.parametrize("kind", ["ndjson", "csv"])
async def test_dash_reads_standard_input(tenant, engine, database_url, clock, kind):
    events = many(tenant.slug, clock() - timedelta(hours=8), 40)
    text = ndjson(events) if kind == "ndjson" else as_csv(events)

    code, out, err = await run_cli(
        database_url, "ingest", "-", "--format", kind, "--json", stdin=text.encode()
    )

    assert code == 0, err
    assert json.loads(out)["accepted"] == 40
    assert (await totals(engine)).events == 40


async def test_bad_event_stops_at_its_batch_and_a_rerun_completes(
    tenant, engine, database_url, clock, tmp_path
):
    events = many(tenant.slug, clock() - timedelta(days=2), 30)
    events[17]["credits"] = -2
    path = tmp_path / "events.ndjson"
    path.write_text(ndjson(events))

    code, out, err = await run_cli(database_url, "ingest", str(path), "--batch-size", "10")

    assert code == 1
    assert out == ""
    assert "event 17 (credits): must be between 0 and" in err
    assert "batch starting at event 10 was refused" in err
    # The first batch is stored; nothing of the refused batch or after it.
    first = await totals(engine)
    assert first.events == 10
    assert first.rollups_match_events()

    events[17]["credits"] = 2
    path.write_text(ndjson(events))
    code, out, _ = await run_cli(database_url, "ingest", str(path), "--batch-size", "10", "--json")
    assert code == 0
    assert (json.loads(out)["accepted"], json.loads(out)["duplicates"]) == (20, 10)
    assert (await totals(engine)).events == 30


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": "x", oops}', "event 2 (event): malformed JSON at line 3, column 13"),
        ('{"credits": NaN}', "event 2 (event): malformed JSON at line 3"),
        ('"just text"', "event 2 (event): each event must be a JSON object"),
    ],
    ids=["syntax", "nan", "not-an-object"],
)
async def test_malformed_line_is_named(
    tenant, engine, database_url, clock, tmp_path, line, expected
):
    events = many(tenant.slug, clock() - timedelta(hours=1), 3)
    path = tmp_path / "events.ndjson"
    lines = ndjson(events).splitlines()
    lines[2] = line
    path.write_text("\n".join(lines))

    code, _, err = await run_cli(database_url, "ingest", str(path))

    assert code == 1
    assert expected in err
    assert (await totals(engine)).events == 0


async def test_unknown_organization_and_bad_csv_cells_are_named(
    tenant, engine, database_url, clock, tmp_path
):
    at = clock() - timedelta(hours=1)
    events = [
        event(tenant.slug, at),
        event("no-such-org", at),
        event(tenant.slug, at, credits="1.5"),
        event(tenant.slug, at, status="9" * 5000),
    ]
    path = tmp_path / "events.csv"
    path.write_text(as_csv(events))

    code, _, err = await run_cli(database_url, "ingest", str(path))

    assert code == 1
    assert "event 2 (credits): must be an integer" in err
    assert "event 3 (status): must be an HTTP status" in err
    assert (await totals(engine)).events == 0
    # Field errors come first; once they are fixed the organization is checked.
    path.write_text(as_csv(events[:2]))
    code, _, err = await run_cli(database_url, "ingest", str(path))
    assert code == 1
    assert "event 1 (organization): unknown organization 'no-such-org'" in err
    assert (await totals(engine)).events == 0


async def test_missing_file_is_an_error(database_url, tmp_path):
    code, _, err = await run_cli(database_url, "ingest", str(tmp_path / "nope.ndjson"))
    assert code == 2
    assert "cannot read" in err
