"""What a user may do in their organization."""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    """Stored by value in ``users.role``; the GraphQL ``Role`` enum wraps this one."""

    ADMIN = "ADMIN"  # sees usage, keys and the credit pool
    MEMBER = "MEMBER"  # sees the organization's name and plan
