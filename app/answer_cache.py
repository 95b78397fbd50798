"""Answers kept per worker, reused while nothing they show can have changed.

A dashboard asks the same few queries again and again (every admin, every refresh), and
most of a report's cost is GraphQL's own work, not the database's (bench/PROPOSALS.md,
issue 17). So a query's encoded answer is kept, keyed on everything it is a function of:

* the viewer's user row and organization row as the request's own authentication read
  them, including ``organizations.data_version``, which every write of events, API keys
  and users moves in its own transaction (db/ingestion/writer.py). A new event, a new
  key or user, a changed role or plan, in any worker, gives the next request another key;
* the document, the operation name, the variables and the extensions, and the media type
  the answer was encoded for;
* and only until the first instant the clock could change it (``Freshness``: LAST_30_DAYS
  holds until the next local midnight; a TO_DATE comparison or the credit pool's outlook
  is never kept).

Only documents of the fields ``graphql_schema.answer_policy`` allows, and only answers
without errors, are kept. The token is still checked and the rate limits still charged on
every request; a reused answer skips only the execution. Memory is bounded by
``answer_cache_bytes`` (least recently used first out); 0 turns the cache off.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

import orjson

from domain.records import OrganizationRecord, UserRecord

# What an entry costs beyond its body and document: the key's tuple and records.
ENTRY_OVERHEAD = 1_024


@dataclass(frozen=True, slots=True)
class AnswerKey:
    user: UserRecord
    organization: OrganizationRecord
    media_type: str
    query: str
    operation_name: str | None
    variables: bytes  # canonical JSON: the same variables in any order are one key
    extensions: bytes


def answer_key(
    user: UserRecord,
    organization: OrganizationRecord,
    media_type: str,
    query: str,
    operation_name: str | None,
    variables: object,
    extensions: object,
) -> AnswerKey | None:
    """The key of a request's answer, or None when its JSON cannot be made canonical."""
    try:
        canonical = (
            orjson.dumps(variables, option=orjson.OPT_SORT_KEYS),
            orjson.dumps(extensions, option=orjson.OPT_SORT_KEYS),
        )
    except TypeError:  # a value orjson cannot encode (e.g. an integer above 64 bits)
        return None
    return AnswerKey(user, organization, media_type, query, operation_name, *canonical)


@dataclass(frozen=True, slots=True)
class Answer:
    body: bytes
    status: int
    valid_until: datetime
    # What the execution recorded, charged and logged again when the answer is reused.
    operation_names: tuple[str, ...]
    cost: int

    def size(self, key: AnswerKey) -> int:
        return (
            len(self.body)
            + len(key.query)
            + len(key.variables)
            + len(key.extensions)
            + ENTRY_OVERHEAD
        )


class AnswerCache:
    """Least recently used answers, at most ``max_bytes`` of them."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._answers: OrderedDict[AnswerKey, Answer] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: AnswerKey, now: datetime) -> Answer | None:
        answer = self._answers.get(key)
        if answer is None:
            return None
        if now >= answer.valid_until:
            self._drop(key)
            return None
        self._answers.move_to_end(key)
        return answer

    def put(self, key: AnswerKey, answer: Answer) -> None:
        size = answer.size(key)
        if size > self.max_bytes // 8:  # one answer never takes the room of many
            return
        if key in self._answers:
            self._drop(key)
        self._answers[key] = answer
        self.bytes += size
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._answers)))

    def clear(self) -> None:
        self._answers.clear()
        self.bytes = 0

    def _drop(self, key: AnswerKey) -> None:
        answer = self._answers.pop(key)
        self.bytes -= answer.size(key)
