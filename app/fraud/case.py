"""The referral being checked, and the lookups its signals share.

Every lookup is index-backed and cached for the check, so twenty signals cost a handful of
queries: the referee's identifiers (customer_identifiers by customer), those shared with the
referrer or with other referees ((merchant, kind, value) unique index), list entries
((merchant, kind, value)), referrals by referrer and time.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.fraud.models import CustomerIdentifier, FraudListEntry, ListKind
from app.personal import hashed_value, lookup_hash
from app.referrals.models import Customer, Referral

MAX_MATCHES = 50  # evidence rows kept per lookup: enough to explain, bounded for a farm
IP_WINDOW = timedelta(hours=1)  # IP addresses are compared across referees within this window
REUSE_KINDS = ("DEVICE", "PAYMENT", "IP")
MAX_SEEN = 500  # customers seen with the referee's identifiers, read per check
RECENT_REFERRALS = 500  # at most this many of the referrer's referrals are read by one signal


@dataclass(frozen=True)
class Shared:
    """An identifier the referee shares with the referrer."""

    kind: str
    value: str
    referee_seen_at: datetime
    referrer_seen_at: datetime

    @property
    def hours_apart(self) -> float:
        return abs((self.referee_seen_at - self.referrer_seen_at).total_seconds()) / 3600


@dataclass(frozen=True)
class OtherReferee:
    """Another referee of the program seen with one of the referee's identifiers."""

    kind: str
    value: str
    customer_id: uuid.UUID
    external_id: str
    referral_id: uuid.UUID
    referred_at: datetime
    seen_at: datetime


@dataclass
class Case:
    session: AsyncSession
    merchant_id: uuid.UUID
    program_id: uuid.UUID
    referral_id: uuid.UUID
    referrer: Customer
    referee: Customer
    at: datetime  # when it happened (the action's time): windows count back from here
    _cache: dict[str, Any] = field(default_factory=dict)

    async def _cached(self, key: str, load) -> Any:
        if key not in self._cache:
            self._cache[key] = await load()
        return self._cache[key]

    async def referee_identifiers(self) -> list[CustomerIdentifier]:
        async def load():
            query = select(CustomerIdentifier).where(CustomerIdentifier.customer_id == self.referee.id)
            return list((await self.session.scalars(query.limit(500))).all())

        return await self._cached("referee_identifiers", load)

    async def shared_with_referrer(self, kind: str) -> list[Shared]:
        async def load():
            mine, theirs = aliased(CustomerIdentifier), aliased(CustomerIdentifier)
            rows = await self.session.execute(
                select(mine.kind, mine.value, mine.last_seen_at, theirs.last_seen_at.label("theirs_seen"))
                .select_from(mine)
                .join(
                    theirs,
                    and_(
                        theirs.merchant_id == mine.merchant_id,
                        theirs.kind == mine.kind,
                        theirs.value_hash == mine.value_hash,
                        theirs.customer_id == self.referrer.id,
                    ),
                )
                .where(mine.customer_id == self.referee.id)
                .limit(MAX_MATCHES)
            )
            return [Shared(r.kind, r.value, r.last_seen_at, r.theirs_seen) for r in rows]

        return [s for s in await self._cached("shared_with_referrer", load) if s.kind == kind]

    async def other_referees(self, kind: str) -> list[OtherReferee]:
        """Other referees of this program seen with one of the referee's devices or cards, or
        (within the last `IP_WINDOW`) IP addresses, the three kinds at once, newest referral first."""

        async def load():
            since = self.at - IP_WINDOW
            mine = {(i.kind, i.value_hash): i.value for i in await self.referee_identifiers()}
            wanted = [
                and_(
                    CustomerIdentifier.merchant_id == self.merchant_id,
                    CustomerIdentifier.kind == i.kind,
                    CustomerIdentifier.value_hash == i.value_hash,
                    # inside the branch, so a carrier's address is a range scan of the recent ones
                    *([CustomerIdentifier.last_seen_at >= since] if i.kind == "IP" else []),
                )
                for i in await self.referee_identifiers()
                if i.kind in REUSE_KINDS and i.first_seen_at <= self.at and (i.kind != "IP" or i.last_seen_at >= since)
            ]
            if not wanted:
                return []
            # Two steps, so that both databases start from the identifiers' index (one join let
            # SQLite start from every referral of the program): who else was seen with them,
            # then which of those are referees of this program. Usually the first finds no one.
            seen = (await self.session.execute(
                select(
                    CustomerIdentifier.kind, CustomerIdentifier.value_hash, CustomerIdentifier.customer_id,
                    CustomerIdentifier.last_seen_at,
                )
                .where(
                    or_(*wanted),
                    CustomerIdentifier.customer_id != self.referee.id,
                    CustomerIdentifier.first_seen_at <= self.at,  # not what happened after this moment
                )
                .limit(MAX_SEEN)
            )).all()
            if not seen:
                return []
            referees = {
                row.referee_id: row
                for row in (await self.session.execute(
                    select(Referral.id, Referral.referee_id, Referral.referred_at, Customer.external_id)
                    .join(Customer, Customer.id == Referral.referee_id)
                    .where(Referral.program_id == self.program_id, Referral.referee_id.in_({r.customer_id for r in seen}))
                )).all()
            }
            found = [  # the referee's own (readable) value: the other customer's may be erased
                OtherReferee(
                    r.kind, mine[(r.kind, r.value_hash)], r.customer_id, referee.external_id, referee.id, referee.referred_at,
                    r.last_seen_at,
                )
                for r in seen
                if (referee := referees.get(r.customer_id)) is not None
            ]
            return sorted(found, key=lambda o: o.referred_at, reverse=True)

        return [o for o in await self._cached("other_referees", load) if o.kind == kind]

    async def referrers_referrals(self, *, since: datetime | None = None, limit: int = RECENT_REFERRALS) -> list[Any]:
        """The referrer's latest referrals in the program up to this moment (this one
        excluded), with each referee's email (index on referrer and time)."""
        query = (
            select(Referral.id, Referral.referred_at, Customer.email_canonical, Customer.external_id)
            .join(Customer, Customer.id == Referral.referee_id)
            .where(
                Referral.referrer_id == self.referrer.id,
                Referral.program_id == self.program_id,
                Referral.referred_at <= self.at,
                Referral.id != self.referral_id,
            )
        )
        if since is not None:
            query = query.where(Referral.referred_at > since)
        rows = await self.session.execute(query.order_by(Referral.referred_at.desc()).limit(limit))
        return list(rows.all())

    async def strangers_on_ip(self, ip: str, *, enough: int) -> int:
        """Customers seen behind `ip` who are neither party nor referred in this program, counted
        up to `enough`. Such strangers make an address a shared network (a carrier's CGNAT, an
        office, a campus), where an address or browser in common means little; a farm's or a
        self-referrer's address is used by the referees they make."""

        async def load():
            referred = (
                select(Referral.id)
                .where(Referral.program_id == self.program_id, Referral.referee_id == CustomerIdentifier.customer_id)
                .exists()
            )
            rows = await self.session.execute(
                select(CustomerIdentifier.customer_id)
                .where(
                    CustomerIdentifier.merchant_id == self.merchant_id,
                    CustomerIdentifier.kind == "IP",
                    CustomerIdentifier.value_hash == lookup_hash(self.merchant_id, "IP", ip),
                    CustomerIdentifier.customer_id.not_in([self.referrer.id, self.referee.id]),
                    ~referred,
                )
                .limit(enough)
            )
            return len(rows.all())

        return await self._cached(f"strangers_on_ip:{ip}:{enough}", load)

    async def list_entries(self) -> list[FraudListEntry]:
        """The merchant's list entries that name the referee's identifiers, either party's
        email or domain, or either customer (trusted / banned), plus every IP range."""

        async def load():
            branches = [
                and_(FraudListEntry.merchant_id == self.merchant_id, FraudListEntry.kind == k.value, FraudListEntry.value == v)
                for k, v in await self._list_candidates()
            ]
            if any(i.kind == "IP" for i in await self.referee_identifiers()):
                branches.append(and_(FraudListEntry.merchant_id == self.merchant_id, FraudListEntry.kind == ListKind.IP_RANGE.value))
            return list((await self.session.scalars(select(FraudListEntry).where(or_(*branches)))).all())

        return await self._cached("list_entries", load)

    async def _list_candidates(self) -> list[tuple[ListKind, str]]:
        candidates: list[tuple[ListKind, str]] = []
        for customer in (self.referee, self.referrer):
            candidates += [(ListKind.TRUSTED_CUSTOMER, str(customer.id)), (ListKind.BANNED_CUSTOMER, str(customer.id))]
            if customer.email_canonical:
                candidates.append((ListKind.EMAIL, customer.email_canonical))
                candidates += [(ListKind.DOMAIN, d) for d in domain_and_parents(customer.email_canonical)]
        by_kind = {"DEVICE": ListKind.DEVICE, "PAYMENT": ListKind.PAYMENT, "IP": ListKind.IP}
        for identifier in await self.referee_identifiers():
            if identifier.kind in by_kind and identifier.value is not None:
                candidates.append((by_kind[identifier.kind], identifier.value))
        # entries naming an erased customer hold the value's keyed hash (app.privacy.erasure)
        return candidates + [
            (kind, hashed_value(self.merchant_id, kind.value, value))
            for kind, value in candidates if kind in (ListKind.EMAIL, ListKind.DEVICE, ListKind.PAYMENT, ListKind.IP)
        ]


def domain_and_parents(email: str) -> list[str]:
    """`a@mail.x.example.com` -> ["mail.x.example.com", "x.example.com", "example.com"]."""
    labels = email.rpartition("@")[2].split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]
