"""``creditlens ingest FILE``: stream NDJSON or CSV through the ingestion path in batches.

The file is read line by line, never whole, so memory stays flat for any size. Each batch
is atomic, as over HTTP. At the first rejected batch the command stops and names the bad
events by their index in the file; the batches before it are stored, and running the same
file again is safe because event ids make ingestion idempotent.
"""

from __future__ import annotations

import asyncio
import csv
import os
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from db.ingestion import EventError, IngestRejected, ValidEvent
from db.ingestion.decoding import MalformedJson, decode
from db.ingestion.validation import validate_events
from db.ingestion.writer import write
from domain.clock import system_clock

CSV_INTEGERS = ("status", "credits")


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    errors: list[EventError] = field(default_factory=list)
    # Events of the batches written (accepted or duplicates), before any refused batch.
    processed: int = 0

    @property
    def rate(self) -> float:
        return (self.accepted + self.duplicates) / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "processed": self.processed,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.rate),
            "errors": [error.as_dict() for error in self.errors],
        }


def _ndjson(stream: TextIO) -> Iterator[object]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            yield decode(line, line=number)
        except MalformedJson as error:
            yield _Malformed(
                f"malformed JSON at line {error.line}, column {error.column}: {error.reason}"
            )


@dataclass(frozen=True)
class _Malformed:
    reason: str


def _csv(stream: TextIO) -> Iterator[object]:
    reader = csv.DictReader(stream)
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # E.g. a field longer than csv.field_size_limit() (128 KiB, far above any valid
            # field): the reader cannot go on, and the batch holding this line is refused.
            # ``line_num`` counts the lines read before the record that failed.
            yield _Malformed(f"malformed CSV at line {reader.line_num + 1}: {error}")
            return
        event: dict[str, object] = {k: v for k, v in row.items() if k and v not in (None, "")}
        for name in CSV_INTEGERS:
            value = event.get(name)
            # Bounded so a 5,000-digit cell stays a string (and is refused) instead of
            # raising; 19 digits hold any 64-bit value.
            if isinstance(value, str):
                digits = value.removeprefix("-")
                if digits.isascii() and digits.isdigit() and len(digits) <= 19:
                    event[name] = int(value)
        for ref in ("api_key", "user"):
            display = event.pop(f"{ref}_name", None)
            if ref in event and display is not None:
                event[ref] = {"id": event[ref], "name": display}
        yield event


class Progress:
    """Progress on standard error for inputs of more than one batch, at most twice a second:
    a bar when the size is known (a file), a running count otherwise (standard input)."""

    def __init__(self, stream: TextIO, out: TextIO) -> None:
        self.stream = stream
        self.out = out
        self.total = _size(stream)
        self.batches = 0
        self.shown_at = 0.0
        self.end = "\r" if out.isatty() else "\n"

    def _fraction(self) -> float | None:
        if not self.total:
            return None
        try:
            return min(1.0, self.stream.buffer.tell() / self.total)
        except (AttributeError, OSError, ValueError):
            return None

    def update(self, events: int, summary: Summary, *, final: bool = False) -> None:
        self.batches += not final
        now = time.monotonic()
        if self.batches < 2 or (not final and now - self.shown_at < 0.5):
            return
        self.shown_at = now
        fraction = 1.0 if final else self._fraction()
        bar = ""
        if fraction is not None:
            filled = round(fraction * 30)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%}  "
        self.out.write(
            f"{bar}{events:,} events  {summary.rate:,.0f}/s  "
            f"accepted {summary.accepted:,}  duplicates {summary.duplicates:,}"
            f"{chr(10) if final else self.end}"
        )
        self.out.flush()


def _size(stream: TextIO) -> int | None:
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


@dataclass
class _Prepared:
    """One batch read, parsed and validated, ready to write."""

    first_index: int
    size: int
    now: datetime
    valid: list[ValidEvent]
    errors: list[EventError]


_SLICE = 200  # events parsed or validated between two chances for the write to progress


async def _prepare_next(events: Iterator[object], first_index: int, size: int) -> _Prepared | None:
    """Read, parse and validate the next batch, yielding to the event loop every few events
    so the batch being written meanwhile keeps talking to the database."""
    batch: list[object] = []
    while len(batch) < size:
        chunk = list(islice(events, min(_SLICE, size - len(batch))))
        batch.extend(chunk)
        await asyncio.sleep(0)
        if len(chunk) < _SLICE:
            break
    if not batch:
        return None
    now = system_clock()
    malformed = [
        EventError(first_index + offset, "", item.reason)
        for offset, item in enumerate(batch)
        if isinstance(item, _Malformed)
    ]
    if malformed:
        return _Prepared(first_index, len(batch), now, [], malformed)
    valid: list[ValidEvent] = []
    errors: list[EventError] = []
    for start in range(0, len(batch), _SLICE):
        good, bad = validate_events(
            batch[start : start + _SLICE], now, first_index=first_index + start
        )
        valid.extend(good)
        errors.extend(bad)
        await asyncio.sleep(0)
    return _Prepared(first_index, len(batch), now, valid, errors)


async def ingest_stream(
    engine: AsyncEngine,
    stream: TextIO,
    *,
    kind: str,
    batch_size: int,
    progress: bool,
    published: Callable[[Iterable[int]], Awaitable[None]] | None = None,
) -> Summary:
    """Ingest a file batch by batch; stops at the first refused batch (see ``errors``).

    ``published`` is told the organizations of each committed batch, as the HTTP route
    tells live usage (``LiveUsageHub.published``): a dashboard subscribed on any worker
    ticks while a file loads.

    The next batch is read, parsed and validated (in slices, on the event loop) while the
    current one is written, so reading overlaps the database's work. Writes stay in file
    order, one at a time. (Not a thread: the GIL would make every database reply wait for
    the reading thread's time slice.)
    """
    summary = Summary()
    started = time.perf_counter()
    meter = Progress(stream, sys.stderr) if progress else None
    events = _csv(stream) if kind == "csv" else _ndjson(stream)
    upcoming = asyncio.create_task(_prepare_next(events, 0, batch_size))
    try:
        while (current := await upcoming) is not None:
            if current.errors:
                summary.errors = current.errors
                break
            following = current.first_index + current.size
            upcoming = asyncio.create_task(_prepare_next(events, following, batch_size))
            try:
                result = await write(engine, current.valid, now=current.now)
            except IngestRejected as rejected:  # an unknown organization
                summary.errors = rejected.errors
                break
            if published is not None and result.organization_ids:
                await published(result.organization_ids)
            summary.accepted += result.accepted
            summary.duplicates += result.duplicates
            summary.processed = following
            summary.seconds = time.perf_counter() - started
            if meter is not None:
                meter.update(summary.processed, summary)
    finally:
        if not upcoming.done():
            upcoming.cancel()
            await asyncio.wait([upcoming])
    summary.seconds = time.perf_counter() - started
    if meter is not None and not summary.errors:
        meter.update(summary.processed, summary, final=True)
    return summary
