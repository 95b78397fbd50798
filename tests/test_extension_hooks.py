"""Extension hooks found once per class (graphql_schema.extension_hooks) run as strawberry's.

The cache holds, per extension class and stage, the hook's kind and a context-manager
factory; never an instance. Each request's hooks run on that request's own extension
instance (two requests at once each see their own query), in the stages and order
strawberry's own runner gives, for generator hooks, plain-function hooks and a subclass
that overrides one hook of its base.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import strawberry
from strawberry.extensions import SchemaExtension

from graphql_schema.schema import Schema

SEEN: list[tuple[str, str, int, str | None]] = []


class Recorder(SchemaExtension):
    name = "recorder"

    def on_operation(self) -> Iterator[None]:
        SEEN.append((self.name, "operation in", id(self), self.execution_context.query))
        yield
        SEEN.append((self.name, "operation out", id(self), self.execution_context.query))

    def on_parse(self) -> Iterator[None]:
        yield
        SEEN.append((self.name, "parsed", id(self), self.execution_context.query))

    def on_validate(self) -> Iterator[None]:
        SEEN.append((self.name, "validate", id(self), self.execution_context.query))
        yield

    def on_execute(self) -> Iterator[None]:
        SEEN.append((self.name, "execute", id(self), self.execution_context.query))
        yield


class Child(Recorder):
    name = "child"

    def on_parse(self) -> Iterator[None]:  # overrides its base's hook: its own entry
        SEEN.append((self.name, "child parse", id(self), self.execution_context.query))
        yield


class Plain(SchemaExtension):
    def on_execute(self) -> None:  # a plain function: strawberry's own wrapping
        SEEN.append(("plain", "execute", id(self), self.execution_context.query))


class Results(SchemaExtension):
    async def get_results(self) -> dict[str, object]:  # extensions with results are asked
        return {"query": self.execution_context.query}


@strawberry.type
class Query:
    @strawberry.field
    async def slow(self, delay: float) -> float:
        await asyncio.sleep(delay)
        return delay


def _by_request(seen: list[tuple[str, str, int, str | None]]) -> dict[str | None, list[str]]:
    """The stages each query saw, and a check that one instance served one query."""
    stages: dict[str | None, list[str]] = {}
    owner: dict[int, str | None] = {}
    for name, stage, instance, query in seen:
        assert owner.setdefault(instance, query) == query  # no instance serves two requests
        stages.setdefault(query, []).append(f"{name} {stage}")
    return stages


async def _run(schema: strawberry.Schema) -> dict[str | None, list[str]]:
    SEEN.clear()
    queries = ["{ slow(delay: 0.02) }", "{ slow(delay: 0.0) }"]
    results = await asyncio.gather(*(schema.execute(query) for query in queries))
    assert [result.errors for result in results] == [None, None]
    assert [result.extensions for result in results] == [{"query": query} for query in queries]
    return _by_request(list(SEEN))


async def test_hooks_run_per_request_instance_as_strawberrys_runner_runs_them():
    extensions = [Recorder, Child, Plain, Results]
    ours = await _run(Schema(query=Query, extensions=extensions))
    theirs = await _run(strawberry.Schema(query=Query, extensions=extensions))
    assert ours == theirs
    assert ours["{ slow(delay: 0.0) }"][:3] == [
        "recorder operation in",
        "child operation in",
        "child child parse",
    ]
    # Twice more: what was found for the classes the first time serves later requests.
    for _ in range(2):
        assert await _run(Schema(query=Query, extensions=extensions)) == theirs
