"""Print the schema in SDL: ``python -m app.schema_file > schema.graphql``."""

from __future__ import annotations

import sys

from app.settings import Settings
from graphql_schema.schema import build_schema


def schema_sdl() -> str:
    return build_schema(Settings()).as_str() + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_sdl())
