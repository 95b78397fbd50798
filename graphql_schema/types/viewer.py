"""People: the viewer, and the users that usage is attributed to."""

from __future__ import annotations

import strawberry

from domain.records import UserRecord
from graphql_schema.enums import Role


@strawberry.type(description="A user of the organization.")
class User:
    id: strawberry.ID = strawberry.field(
        description="The user's id, as the API platform names them."
    )
    name: str = strawberry.field(description="Display name.")
    email: str | None = strawberry.field(description="Email address, if known.")
    role: Role = strawberry.field(description="ADMIN or MEMBER.")

    @classmethod
    def of(cls, row: UserRecord) -> User:
        return cls(id=strawberry.ID(row.external_id), name=row.name, email=row.email, role=row.role)


@strawberry.type(description="Who is asking: the user the access token belongs to.")
class Viewer(User):
    @classmethod
    def of(cls, row: UserRecord) -> Viewer:
        return cls(id=strawberry.ID(row.external_id), name=row.name, email=row.email, role=row.role)
