"""Usage events in: validation, then one atomic write of events and their rollups."""

from db.ingestion.validation import EventError, ValidEvent, validate_events
from db.ingestion.writer import IngestRejected, IngestResult, ingest, ingest_events

__all__ = [
    "EventError",
    "IngestRejected",
    "IngestResult",
    "ValidEvent",
    "ingest",
    "ingest_events",
    "validate_events",
]
