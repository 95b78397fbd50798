"""GraphiQL at ``GET /graphql`` for browsers, from files this service serves itself.

strawberry's own page loads React and GraphiQL from a CDN: offline or under a strict
Content-Security-Policy it never gets past "Loading...". This page loads the vendored
copies under ``/static/vendor/`` and starts GraphiQL from ``/static/graphiql/graphiql.js``
(no inline script). Its settings travel in a JSON data block, which CSP does not execute.
"""

from __future__ import annotations

import json

from starlette.responses import HTMLResponse

from app.pages import page

# The README's example query; a test keeps the two equal.
DEFAULT_QUERY = """\
{
  organization {
    name
    creditPool { consumed allowance remaining burnRatePerDay projectedExhaustionAt }
    endpointUsage(timeRange: { preset: LAST_30_DAYS }) {
      endpoint calls creditsConsumed percentOfTotal
    }
    usage(timeRange: { preset: THIS_WEEK, timezone: "Asia/Kolkata" }) {
      range { start end timezone }
      bySource { source calls creditsConsumed percentOfTotal }
      byApiKey { apiKey { name } calls creditsConsumed }
      series(granularity: DAY) { start calls creditsConsumed }
      previous { creditsConsumed }
      change { creditsPercent }
      lastEventAt
    }
  }
}
"""
# Shown in the headers editor so the place of the token is plain to see.
DEFAULT_HEADERS = '{\n  "Authorization": "Bearer <paste a user token here>"\n}'

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>creditlens · GraphiQL</title>
<link rel="icon" href="/static/dashboard/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/vendor/graphiql/graphiql.min.css">
<link rel="stylesheet" href="/static/vendor/graphiql-plugin-explorer/style.css">
<link rel="stylesheet" href="/static/graphiql/graphiql.css">
<script type="application/json" id="graphiql-config">__CONFIG__</script>
<script src="/static/vendor/react/react.production.min.js" defer></script>
<script src="/static/vendor/react-dom/react-dom.production.min.js" defer></script>
<script src="/static/vendor/graphiql/graphiql.min.js" defer></script>
<script src="/static/vendor/graphiql-plugin-explorer/index.umd.js" defer></script>
<script src="/static/graphiql/graphiql.js" defer></script>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
</body>
</html>
"""


def _config_json() -> str:
    config = {"query": DEFAULT_QUERY, "headers": DEFAULT_HEADERS}
    # "<" escaped so no value can close the data block's <script> element.
    return json.dumps(config).replace("<", "\\u003c")


_PAGE = _TEMPLATE.replace("__CONFIG__", _config_json())


def graphiql_page() -> HTMLResponse:
    """The GraphiQL page, with the README's example query and an Authorization header slot."""
    return page(_PAGE)
