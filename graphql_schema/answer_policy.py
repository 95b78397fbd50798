"""Which documents' answers the answer cache may keep (``app/answer_cache.py``).

An answer can be kept only if everything it shows is a function of what the cache key
holds: the viewer's user and organization rows (read again by every request, including
``organizations.data_version``, which every write of events, keys and users moves), the
document, its variables, and the clock as far as the resolvers bound it
(``resolvers.context.Freshness``). So a field qualifies when it reads nothing else:
usage reports and their rows, API keys and users, the viewer. Alerts, webhook deliveries
and the credit pool's outlook read other tables or the moment itself and never qualify;
nor do mutations, subscriptions and introspection.

This is an allow list on purpose: a field added later is not cached until someone adds
it here, having checked what it reads (tests/test_answer_policy.py fails while an object
type of the schema is in neither list).
"""

from __future__ import annotations

from collections import OrderedDict

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    parse,
    visit,
)

# Object types every field of which qualifies.
WHOLE_TYPES = frozenset(
    {
        "Viewer",
        "User",
        "ApiKey",
        "ApiKeyConnection",
        "ApiKeyEdge",
        "PageInfo",
        "UsageReport",
        "ResolvedTimeRange",
        "EndpointUsage",
        "SourceUsage",
        "UserUsage",
        "ApiKeyUsage",
        "OutcomeUsage",
        "UsageBucket",
        "UsageChange",
        "UsageSpike",
        "SpikeDriver",
    }
)
# Object types some fields of which qualify: only those named.
SOME_FIELDS = {
    "Query": frozenset({"viewer", "organization"}),
    "Organization": frozenset(
        {"id", "slug", "name", "plan", "timezone", "apiKeys", "apiKey", "endpointUsage", "usage"}
    ),
}
# Object types no field of which qualifies, and why (checked by the test above).
NEVER = {
    "Alert": "alert states and thresholds live in the alerts table, and a state reads the clock",
    "CreditPool": "the outlook is computed from the current instant",
    "WebhookDelivery": "deliveries change without any event being ingested",
    "CreateAlertPayload": "a mutation's answer",
    "UsageTick": "subscriptions are pushed, not cached",
    "Mutation": "mutations change data",
    "Subscription": "subscriptions are pushed, not cached",
}
KNOWN = 512  # documents whose verdict is remembered


class _Verdict(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.reusable = True

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        if node.operation is not OperationType.QUERY:
            self.reusable = False

    def enter_field(self, node: FieldNode, *_: object) -> None:
        name = node.name.value
        if name == "__typename":
            return
        parent = self.type_info.get_parent_type()
        parent_name = getattr(parent, "name", None)
        if parent_name in WHOLE_TYPES:
            return
        if name in SOME_FIELDS.get(str(parent_name), ()):
            return
        self.reusable = False


class AnswerPolicy:
    """Says whether a document's answers may be reused; remembers the last ``KNOWN``."""

    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self._known: OrderedDict[str, bool] = OrderedDict()

    def reusable(self, query: str) -> bool:
        verdict = self._known.get(query)
        if verdict is None:
            verdict = self._judge(query)
            self._known[query] = verdict
            if len(self._known) > KNOWN:
                self._known.popitem(last=False)
        else:
            self._known.move_to_end(query)
        return verdict

    def _judge(self, query: str) -> bool:
        try:
            document: DocumentNode = parse(query, no_location=True)
        except GraphQLError:
            return False
        type_info = TypeInfo(self.schema)
        verdict = _Verdict(type_info)
        visit(document, TypeInfoVisitor(type_info, verdict))
        return verdict.reusable
