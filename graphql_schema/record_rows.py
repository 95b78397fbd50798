"""Table rows kept as the domain records they come from, completed without an object each.

A report's tables are lists of small objects (``EndpointUsage``, ``SourceUsage``,
``UsageBucket``) made from domain records (``Share``, a series bucket): a page of 50 keys
holds about 260 of them. Making each strawberry object and reading it back field by field
(``graphql_schema.execution.complete_row``) cost about 1.7 us a row, four times what the
plain route spends turning the same record into its JSON row (bench/PROPOSALS.md, R38).

So a resolver returns a :class:`RecordRows`: the records, and the type's :class:`RowView`,
which says for every field of the type how its value comes from a record (the record's
attribute of that name, or a function of the record). The one way to make an object from
a record is the view's :meth:`RowView.make`, so the object graphql-core would complete and
the row completed from the record cannot differ: the rows' path (``complete_rows``) reads
each selected field's value from the record as ``make`` would have set it, then checks
and coerces it exactly as for an object; graphql-core's own path, and any other reader,
iterates the list and gets the objects ``make`` builds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any, Generic, TypeVar, overload

from graphql import GraphQLObjectType
from strawberry.schema.schema_converter import GraphQLCoreConverter

R = TypeVar("R")
T = TypeVar("T")

DEFINITION = GraphQLCoreConverter.DEFINITION_BACKREF
# Distinct row plans a view keeps its record steps for; past it, they are derived per list.
_STEPS_LIMIT = 256

# A field's value: the record's attribute of that name, or a function of the record.
Source = str | Callable[[Any], Any]


def _apply(record: Any, get: Callable[[Any], Any]) -> Any:
    """A record step's ``resolve``: ``complete_row`` calls ``resolve(source, attribute)``."""
    return get(record)


def constant(value: Any) -> Callable[[Any], Any]:
    """A field whose value is the same for every record (``isOther`` of a listed row)."""
    return lambda _record: value


class RowView(Generic[R, T]):
    """How a record of type ``R`` becomes an object of the strawberry type ``cls``: the
    source of each field's value, by the field's Python name. Every field of ``cls`` needs
    one (tests/test_record_rows.py checks each view against its type)."""

    def __init__(self, cls: type[T], fields: Mapping[str, Source]) -> None:
        self.cls = cls
        self.fields = dict(fields)
        self._getters = {
            name: (source if callable(source) else attrgetter(source))
            for name, source in self.fields.items()
        }
        # id of a row plan -> (the plan, kept so its id stays its own; the same steps
        # reading the record, or None: not from this view). Row plans live as long as
        # their document's memo, so the same plan object comes back on every request.
        self._steps: dict[int, tuple[tuple[Any, ...], tuple[Any, ...] | None]] = {}
        # id of an object type -> (the type, whether its type check passes our objects)
        self._checked: dict[int, tuple[GraphQLObjectType, bool]] = {}

    def make(self, record: R) -> T:
        """The object: the one way a record becomes one."""
        return self.cls(**{name: get(record) for name, get in self._getters.items()})

    def passes_type_check(self, object_type: GraphQLObjectType, record: R, info: Any) -> bool:
        """Whether the type's ``is_type_of`` (graphql-core asks it of every object of a
        list) passes the objects ``make`` builds, asked of the one made from ``record``.
        strawberry's own check depends only on the object's class (``make`` never casts),
        so its verdict is kept; a type's own ``is_type_of`` is asked once per list."""
        known = self._checked.get(id(object_type))
        if known is not None and known[0] is object_type:
            return known[1]
        is_type_of = object_type.is_type_of
        verdict = is_type_of is None or is_type_of(self.make(record), info) is True
        definition = object_type.extensions.get(DEFINITION)
        if getattr(definition, "is_type_of", None) is None and len(self._checked) < _STEPS_LIMIT:
            self._checked[id(object_type)] = (object_type, verdict)
        return verdict

    def rows(self, records: Sequence[R], tail: Sequence[T] = ()) -> RecordRows[R, T]:
        return RecordRows(self, records, tail)

    def steps(
        self, plan: tuple[Any, ...], object_type: GraphQLObjectType
    ) -> tuple[Any, ...] | None:
        """``plan`` (``graphql_schema.execution`` steps reading an object's attributes) as
        steps reading a record, or None when the list is not one of this view's type or a
        field is read some other way (a custom default resolver)."""
        known = self._steps.get(id(plan))
        if known is not None and known[0] is plan:
            return known[1]
        found = self._derive(plan, object_type)
        if len(self._steps) < _STEPS_LIMIT:
            self._steps[id(plan)] = (plan, found)
        return found

    def _derive(
        self, plan: tuple[Any, ...], object_type: GraphQLObjectType
    ) -> tuple[Any, ...] | None:
        definition = object_type.extensions.get(DEFINITION)
        if getattr(definition, "origin", None) is not self.cls:
            return None
        steps = []
        for step in plan:
            response_name, resolve, attribute, leaf, non_null, unchanged = step
            if leaf is None:  # __typename
                steps.append(step)
                continue
            source = self.fields.get(attribute)
            # strawberry's default resolver is getattr unless the schema configures another
            if source is None or resolve is not getattr:
                return None
            if isinstance(source, str):
                steps.append((response_name, getattr, source, leaf, non_null, unchanged))
            else:
                steps.append((response_name, _apply, source, leaf, non_null, unchanged))
        return tuple(steps)


class RecordRows(Sequence[T], Generic[R, T]):
    """A list field's value: records through their view, then objects already made (the
    row that sums the rest). Iterating it makes the objects."""

    __slots__ = ("records", "tail", "view")

    def __init__(self, view: RowView[R, T], records: Sequence[R], tail: Sequence[T] = ()) -> None:
        self.view = view
        self.records = records
        self.tail = tail

    def __len__(self) -> int:
        return len(self.records) + len(self.tail)

    def __iter__(self) -> Iterator[T]:
        make = self.view.make
        for record in self.records:
            yield make(record)
        yield from self.tail

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        return list(self)[index]

    def __repr__(self) -> str:
        return f"RecordRows({list(self)!r})"
