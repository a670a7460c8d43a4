"""The GraphQL schema and its HTTP view, with the guardrails every public GraphQL API needs."""

from __future__ import annotations

import logging
from typing import Any

import strawberry
from graphql import GraphQLError
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxTokensLimiter,
    ParserCache,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from app.config import Settings
from app.schema.admins import AdminMutation, AdminQuery
from app.schema.analytics import AnalyticsQuery
from app.schema.campaigns import CampaignMutation, CampaignQuery
from app.schema.codes import CodeMutation, CodeQuery
from app.schema.coupons import CouponMutation, CouponQuery
from app.schema.customers import CustomerMutation, CustomerQuery
from app.schema.dead_jobs import JobMutation, JobQuery
from app.schema.errors import should_mask
from app.schema.execution import PlainFieldsInline, ValidDocuments, call_resolvers_directly
from app.schema.fraud import FraudMutation, FraudQuery
from app.schema.inputs import build_inputs_from_plans
from app.schema.leads import LeadMutation, LeadQuery
from app.schema.limits import alias_limit_rule, depth_limit_rule
from app.schema.locale import LocaleMutation, LocaleQuery
from app.schema.merchants import MerchantMutation, MerchantQuery
from app.schema.partners import PartnerMutation, PartnerQuery
from app.schema.payouts import PayoutMutation, PayoutQuery
from app.schema.privacy import PrivacyMutation, PrivacyQuery
from app.schema.programs import ProgramMutation, ProgramQuery
from app.schema.referrals import ReferralMutation, ReferralQuery
from app.schema.rewards import RewardMutation, RewardQuery
from app.schema.scalars import SCALAR_MAP
from app.schema.second_factor import OneSecondFactorPerDocument
from app.schema.simulation import SimulationQuery
from app.schema.webhooks import WebhookMutation, WebhookQuery
from app.schema.widget import WidgetMutation, WidgetQuery

logger = logging.getLogger("app.graphql")

Query = merge_types(
    "Query",
    (
        MerchantQuery,
        ProgramQuery,
        CustomerQuery,
        CodeQuery,
        ReferralQuery,
        RewardQuery,
        SimulationQuery,
        CouponQuery,
        JobQuery,
        WebhookQuery,
        FraudQuery,
        WidgetQuery,
        AdminQuery,
        PayoutQuery,
        PrivacyQuery,
        LocaleQuery,
        AnalyticsQuery,
        CampaignQuery,
        LeadQuery,
        PartnerQuery,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        MerchantMutation,
        ProgramMutation,
        CustomerMutation,
        CodeMutation,
        ReferralMutation,
        RewardMutation,
        CouponMutation,
        JobMutation,
        WebhookMutation,
        FraudMutation,
        WidgetMutation,
        AdminMutation,
        PayoutMutation,
        PrivacyMutation,
        LocaleMutation,
        CampaignMutation,
        LeadMutation,
        PartnerMutation,
    ),
)


class Schema(strawberry.Schema):
    valid_documents: ValidDocuments  # the documents the view runs directly (GraphQLView.answer_directly)

    @staticmethod
    def remove_field_suggestion(error: GraphQLError) -> None:
        """With suggestions disabled (production), strip every "Did you mean ...?", not only
        strawberry's field ones: arguments, types, enum values and input fields name the schema too."""
        if "Did you mean" in error.message:
            error.message = error.message.split("Did you mean")[0].strip()

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Log bugs with their traceback; a caller's own mistakes are not server errors."""
        for error in errors:
            if should_mask(error):
                logger.error(
                    "unexpected error in %s",
                    ".".join(str(p) for p in error.path or []) or "operation",
                    exc_info=error.original_error,
                )


def build_schema(settings: Settings) -> Schema:
    # Strawberry builds extensions per request (factories, not instances). The validation
    # rules are built once here: ValidationCache keys on the rule classes, and limiter
    # extensions made per request would bring new classes every time and never hit the cache
    # (measured in-process: a ping went from 0.88 ms to 0.18 ms).
    rules = [
        depth_limit_rule(settings.max_query_depth),
        alias_limit_rule(settings.max_aliases),
        OneSecondFactorPerDocument,
    ]
    if settings.is_production:
        rules.append(NoSchemaIntrospectionCustomRule)
    extensions: list[Any] = [
        lambda: ParserCache(maxsize=512),
        lambda: ValidationCache(maxsize=512),
        lambda: AddValidationRules(rules),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: MaskErrors(should_mask_error=should_mask),
    ]
    schema = Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        config=StrawberryConfig(scalar_map=SCALAR_MAP, disable_field_suggestions=settings.is_production),
        execution_context_class=PlainFieldsInline,
    )
    build_inputs_from_plans(schema)
    call_resolvers_directly(schema)
    schema.valid_documents = ValidDocuments(schema, rules, max_tokens=settings.max_tokens)
    return schema
