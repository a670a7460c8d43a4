"""At most one field that checks a second factor per GraphQL document.

Without it, one request could try a hundred codes through aliases
(`a1: approvePayouts(totpCode: "000000") a2: approvePayouts(totpCode: "000001") ...`). The
lockout counts every code checked anyway; this rule refuses such a document before anything
runs, so it checks no code at all.
"""

from __future__ import annotations

from typing import Any

from graphql import FieldNode, GraphQLError, ValidationRule

SECOND_FACTOR_FIELDS = frozenset({"approvePayouts", "confirmTotpEnrollment", "resetTotp", "createApiKey", "revokeApiKey"})


class OneSecondFactorPerDocument(ValidationRule):
    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.seen = 0

    def enter_field(self, node: FieldNode, *_args: Any) -> None:
        parent = self.context.get_parent_type()
        if parent is None or parent.name != "Mutation" or node.name.value not in SECOND_FACTOR_FIELDS:
            return
        self.seen += 1
        if self.seen == 2:
            self.report_error(
                GraphQLError(
                    "a document may contain at most one field that checks a second factor "
                    f"({', '.join(sorted(SECOND_FACTOR_FIELDS))}): send them one per request",
                    node,
                )
            )
