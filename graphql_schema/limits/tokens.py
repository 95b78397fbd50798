"""The token limit: counted before parsing, so a huge document is refused cheaply."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import GraphQLSyntaxError, Source, TokenKind
from graphql.language import Lexer
from strawberry.extensions import SchemaExtension

from graphql_schema.limits.errors import too_complex


def count_tokens(query: str, stop_after: int) -> int:
    """Tokens of ``query`` (punctuators, names, values), counting at most ``stop_after``.

    A document the lexer rejects stops the count: the parser will report it.
    """
    lexer = Lexer(Source(query))
    count = 0
    try:
        while count <= stop_after and lexer.advance().kind is not TokenKind.EOF:
            count += 1
    except GraphQLSyntaxError:
        pass
    return count


class TokenLimit(SchemaExtension):
    """Refuses documents of more than ``max_tokens`` tokens before they are parsed."""

    def __init__(self, *, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query or ""
        # Every token is at least one character: a short query cannot pass the limit.
        if len(query) > self.max_tokens:
            tokens = count_tokens(query, self.max_tokens)
            if tokens > self.max_tokens:
                raise too_complex(
                    f"The query has more than {self.max_tokens} tokens "
                    "(setting max_tokens). Send a shorter document.",
                    setting="max_tokens",
                    limit=self.max_tokens,
                    actual=tokens,
                )
        yield
