"""schema.graphql is generated from the code; this fails when the two drift apart."""

from __future__ import annotations

from pathlib import Path

from graphql import build_schema as parse_sdl

from app.schema_file import schema_sdl

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema.graphql"


def test_schema_file_matches_the_code():
    assert SCHEMA_FILE.read_text() == schema_sdl(), (
        "schema.graphql is stale: run `make schema` and commit it"
    )


def test_every_type_and_field_has_a_description():
    schema = parse_sdl(SCHEMA_FILE.read_text())
    missing = []
    for name, graphql_type in schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not graphql_type.description:
            missing.append(name)
        for field_name, field in getattr(graphql_type, "fields", {}).items():
            if not field.description:
                missing.append(f"{name}.{field_name}")
    assert missing == []
