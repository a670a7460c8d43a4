"""`simulateRewardRules`: price a rule change on the program's recorded actions before making it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from app import validation
from app.rewards import simulation as service
from app.schema.common import gid
from app.schema.permissions import SecretKeyOrManager
from app.schema.reward_types import RewardKind
from app.schema.rewards import RewardRuleInput
from app.schema.scalars import BigInt
from app.schema.transactions import query


@strawberry.type(description="Rewards of one kind in one unit, summed.")
class RewardTotal:
    kind: RewardKind
    unit: str = strawberry.field(description="ISO 4217 currency, POINTS, or PERCENT.")
    amount: BigInt = strawberry.field(description="Sum of the amounts (for PERCENT coupons, of their basis points).")
    count: int = strawberry.field(description="Number of rewards.")

    @classmethod
    def from_domain(cls, t: service.Total) -> RewardTotal:
        return cls(kind=t.kind, unit=t.unit, amount=t.amount, count=t.count)


def _totals(totals: list[service.Total]) -> list[RewardTotal]:
    return [RewardTotal.from_domain(t) for t in totals]


@strawberry.type(description="What one proposed rule would have granted.")
class SimulatedRule:
    index: int = strawberry.field(description="Position in the `rules` argument.")
    name: str
    count: int = strawberry.field(description="Rewards it would have granted.")
    referrer_count: int
    referee_count: int
    totals: list[RewardTotal]


@strawberry.type(description="What a rule in force really granted for the replayed actions.")
class CurrentRule:
    rule_id: strawberry.ID
    name: str = strawberry.field(description="Of the newest version that granted these rewards.")
    count: int = strawberry.field(description="Every reward granted, whatever became of it since.")
    voided_count: int = strawberry.field(description="Of those, voided while held (e.g. refunded).")
    reversed_count: int = strawberry.field(description="Of those, clawed back after becoming available.")
    totals: list[RewardTotal] = strawberry.field(description="Gross: the amounts as granted.")


@strawberry.type(description="Proposed rules replayed on recorded actions, next to what the current rules granted.")
class SimulationResult:
    actions_replayed: int = strawberry.field(
        description="The program's referral actions in the period (refunds are not replayed)."
    )
    proposed: list[SimulatedRule]
    proposed_totals: list[RewardTotal]
    current: list[CurrentRule]
    current_totals: list[RewardTotal]

    @classmethod
    def from_domain(cls, r: service.SimulationResult) -> SimulationResult:
        return cls(
            actions_replayed=r.actions_replayed,
            proposed=[
                SimulatedRule(
                    index=p.index,
                    name=p.name,
                    count=p.count,
                    referrer_count=p.referrer_count,
                    referee_count=p.referee_count,
                    totals=_totals(p.totals),
                )
                for p in r.proposed
            ],
            proposed_totals=_totals(r.proposed_totals),
            current=[
                CurrentRule(
                    rule_id=gid(c.rule_id),
                    name=c.name,
                    count=c.count,
                    voided_count=c.voided_count,
                    reversed_count=c.reversed_count,
                    totals=_totals(c.totals),
                )
                for c in r.current
            ],
            current_totals=_totals(r.current_totals),
        )


@strawberry.type
class SimulationQuery:
    @strawberry.field(
        permission_classes=[SecretKeyOrManager],
        description=(
            "What `rules` would have granted for the program's actions in [from, to) (at most 366 days, "
            "20 rules), evaluated exactly as live, next to what the current rules granted. Writes nothing. "
            "Refunds are not replayed; caps, budgets and milestones count the proposed rules' rewards from `from`."
        ),
    )
    async def simulate_reward_rules(
        self,
        info: Info,
        program_id: strawberry.ID,
        rules: list[RewardRuleInput],
        from_: Annotated[datetime, strawberry.argument(name="from")],
        to: datetime,
    ) -> SimulationResult:
        async def work(session: AsyncSession) -> SimulationResult:
            result = await service.simulate(
                session,
                merchant_id=info.context.merchant_id,
                program_id=validation.parse_id(program_id, "programId"),
                definitions=[rule.definition() for rule in rules],
                start=from_,
                end=to,
            )
            return SimulationResult.from_domain(result)

        return await query(info, work)
