"""Usage per call outcome of a report (``UsageReport.byOutcome``)."""

from __future__ import annotations

from db.queries import reports
from domain.records import Share
from resolvers.context import Context
from resolvers.usage import ReportScope


async def by_outcome(context: Context, report: ReportScope) -> list[Share]:
    """One row per outcome with calls (at most five), by credits, calls, then name; the
    report's key and outcome filters apply."""
    async with context.db.connection() as conn:
        return await reports.by_outcome(
            conn,
            organization_id=report.organization.id,
            start=report.range.start,
            end=report.range.end,
            api_key_ids=report.key_filter,
            outcomes=report.outcomes,
        )
