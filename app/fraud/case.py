"""The referral being checked, and the lookups its signals share.

Every lookup is index-backed and cached for the check, so twenty signals cost a handful of
queries: the referee's identifiers (customer_identifiers by customer), those shared with the
referrer or with other referees ((merchant, kind, value) unique index), list entries
((merchant, kind, value)), referrals by referrer and time.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    String,
    Text,
    Uuid,
    and_,
    bindparam,
    cast,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.db import UTCDateTime, one_of
from app.fraud.identifiers import sighted_in_transaction
from app.fraud.models import CustomerIdentifier, FraudListEntry, IdentifierKind, ListKind
from app.personal import hashed_value, lookup_hash
from app.referrals.models import MAX_CLOCK_SKEW, Action, Click, Customer, Referral, ReferralCode
from app.rewards.models import Reward
from app.tenancy import merchant_is, not_an_index_key, scoped

MAX_MATCHES = 50  # evidence rows kept per lookup: enough to explain, bounded for a farm
IP_WINDOW = timedelta(hours=1)  # IP addresses are compared across referees within this window
# An erased referee's identifiers keep their keyed hashes (they still match) but not their values:
# evidence names them as app.privacy.erasure rewrites the stored evidence of an erased customer.
ERASED = "[erased]"


def _readable(value: str | None) -> str:
    return ERASED if value is None else value


REUSE_KINDS = ("DEVICE", "PAYMENT", "IP")
MAX_SEEN = 500  # customers seen with the referee's identifiers, read per check
RECENT_REFERRALS = 500  # at most this many of the referrer's referrals are read by one signal
VELOCITY_WINDOW = timedelta(days=1)  # the referrer's referrals and rewards counted back from the check
BASELINE_WINDOW = timedelta(days=30)  # the referrer's usual pace is measured over this (up to a day back)
# List entries whose value is a customer id (either party's is read with every check).
_CUSTOMER_MARKS = (ListKind.TRUSTED_CUSTOMER, ListKind.BANNED_CUSTOMER, ListKind.REFERRER_UNDER_REVIEW)
_LISTED_IDENTIFIERS = ("DEVICE", "PAYMENT", "IP")  # identifier kinds a list entry of the same name can match


def _typed(value: Any, type_: Any, name: str) -> Any:
    """A column of a UNION ALL branch: the value, or a NULL of the column's type."""
    return (cast(null(), type_) if value is None else value).label(name)


@dataclass(frozen=True)
class PayoutSharer:
    """Another customer paid to a payout destination of `customer_id` (one of the parties)."""

    customer_id: uuid.UUID
    other_id: uuid.UUID
    external_id: str


@dataclass(frozen=True)
class ChainStep:
    """A referral seen walking up the referral chain: who referred this customer."""

    id: uuid.UUID
    referrer_id: uuid.UUID


@dataclass(frozen=True)
class RecentReferral:
    id: uuid.UUID
    referred_at: datetime
    email_canonical: str | None
    external_id: str


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


# Customers behind an IP who are neither party nor referred in the program (`Case.strangers_on_ip`).
_STRANGERS_ON_IP = (
    select(CustomerIdentifier.customer_id)
    .where(
        CustomerIdentifier.merchant_id == bindparam("merchant_id"),
        CustomerIdentifier.kind == "IP",
        CustomerIdentifier.value_hash == bindparam("value_hash"),
        not_(one_of(CustomerIdentifier.customer_id, "parties")),
        ~select(Referral.id)
        .where(
            merchant_is(Referral, bindparam("merchant_id")),
            Referral.program_id == bindparam("program_id"),
            Referral.referee_id == CustomerIdentifier.customer_id,
        )
        .exists(),
    )
    .limit(bindparam("enough"))
)


@dataclass(frozen=True, slots=True)
class RefereeIdentifier:
    """One of the referee's identifiers, as the signals read it (an ORM object of each, made
    for every check, cost more than the rest of reading them)."""

    kind: str
    value: str | None
    value_hash: str
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class _Seen:
    """Another customer seen with one of the referee's identifiers."""

    kind: str
    value_hash: str
    customer_id: uuid.UUID
    last_seen_at: datetime


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

    async def _cached(self, key: str, load: Callable[[], Awaitable[Any]]) -> Any:
        if key not in self._cache:
            self._cache[key] = await load()
        return self._cache[key]

    async def prefetch(self) -> None:
        """The lookups every check makes, in one round trip (`_prefetch_statement`, built once:
        a UNION ALL of nine indexed reads): the referee's identifiers, those shared with the
        referrer, the referrer's referrals of the last day, the referrer's rewards and the clicks
        on their codes of the last day and hour, how many referrals they made in the month
        before (their baseline), the first step up the referral chain (rings), the list entries
        that can name either party, and other customers paid to either party's payout
        destinations. The methods below then answer from what was read."""
        day_ago = self.at - VELOCITY_WINDOW
        named = self._named_candidates()
        # The identifiers this transaction recorded for the referee (usually all they have):
        # the list entries naming them and who else was seen with them are read now too. If
        # the referee has others, the methods below read for those when asked.
        sighted = sighted_in_transaction(self.session, self.referee.id)
        listed = self._identifier_candidates([(kind, value) for (kind, _hash), value in sighted.items()])
        seen_hashes = {kind: [h for (k, h) in sighted if k == kind] for kind in REUSE_KINDS}
        rows = await self.session.execute(
            _prefetch_statement(),
            {
                "referee_id": self.referee.id,
                "referrer_id": self.referrer.id,
                "merchant_id": self.merchant_id,
                "program_id": self.program_id,
                "referral_id": self.referral_id,
                "at": self.at,
                "day_ago": day_ago,
                "hour_ago": self.at - timedelta(hours=1),
                "day_ago_skewed": day_ago - MAX_CLOCK_SKEW,
                "baseline_since": self.at - BASELINE_WINDOW,
                "customer_ids": [v for k, v in named if k in _CUSTOMER_MARKS],
                "emails": [v for k, v in named if k is ListKind.EMAIL],
                "domains": [v for k, v in named if k is ListKind.DOMAIN],
                "listed_devices": [v for k, v in listed if k is ListKind.DEVICE],
                "listed_payments": [v for k, v in listed if k is ListKind.PAYMENT],
                "listed_ips": [v for k, v in listed if k is ListKind.IP],
                "seen_devices": seen_hashes["DEVICE"],
                "seen_payments": seen_hashes["PAYMENT"],
                "seen_ips": seen_hashes["IP"],
                "since": self.at - IP_WINDOW,
            },
        )
        parts: dict[str, list[Any]] = {
            "identifier": [],
            "shared": [],
            "recent": [],
            "rewards": [],
            "chain": [],
            "list": [],
            "payout": [],
            "clicks": [],
            "history": [],
            "seen": [],
        }
        for r in rows:
            parts[r.part].append(r)
        # The values this transaction has just written need no decrypting.
        self._cache["referee_identifiers"] = [
            RefereeIdentifier(r.kind, sighted.get((r.kind, r.note)) or _IDENTIFIER_VALUE.decrypt(r.value), r.note, r.t1, r.t2)
            for r in parts["identifier"]
        ]
        self._cache["shared_with_referrer"] = [
            Shared(r.kind, _readable(_IDENTIFIER_VALUE.decrypt(r.value)), r.t1, r.t2) for r in parts["shared"]
        ]
        self._cache[f"referrals_since:{day_ago.isoformat()}:{RECENT_REFERRALS}"] = sorted(
            (RecentReferral(r.id, r.t1, _EMAIL_CANONICAL.decrypt(r.value), r.note) for r in parts["recent"]),
            key=lambda x: x.referred_at,
            reverse=True,
        )
        [counts] = parts["rewards"]
        self._cache["rewards_in_day"] = (counts.n1 or 0, counts.n2 or 0)
        [clicks] = parts["clicks"]
        self._cache["clicks_in_day"] = (clicks.n1 or 0, clicks.n2 or 0)
        [history] = parts["history"]
        self._cache["referrals_before_day"] = history.n1 or 0
        self._cache["chain_step:" + str(self.referrer.id)] = (
            ChainStep(parts["chain"][0].id, parts["chain"][0].other) if parts["chain"] else None
        )
        self._cache["payout_sharers"] = [PayoutSharer(r.id, r.other, r.note) for r in parts["payout"]]
        self._cache["named_list_entries"] = [
            FraudListEntry(id=r.id, merchant_id=self.merchant_id, kind=r.kind, value=r.value, note=r.note) for r in parts["list"]
        ]
        # Read for exactly the referee's identifiers (and, for who else was seen, not cut off
        # at MAX_SEEN): the answers of `list_entries` and `other_referees` are here already.
        stored = {(i.kind, i.value_hash) for i in self._cache["referee_identifiers"]}
        if stored == sighted.keys():
            self._cache["listed_with_identifiers"] = True
            if len(parts["seen"]) < MAX_SEEN:
                self._cache["seen_with"] = [_Seen(r.kind, r.note, r.id, r.t1) for r in parts["seen"]]

    async def payout_sharers(self) -> list[PayoutSharer]:
        """Other customers paid to a payout destination of the referrer or the referee."""
        if "payout_sharers" not in self._cache:
            await self.prefetch()
        return self._cache["payout_sharers"]

    async def rewards_in_day(self) -> tuple[int, int]:
        """The referrer's rewards whose action occurred in the hour / the day before this moment."""

        async def load() -> Any:
            day_ago, hour_ago = self.at - VELOCITY_WINDOW, self.at - timedelta(hours=1)
            occurred = _occurred_at_of_reward_action(self.merchant_id)
            in_hour = func.count(Reward.id).filter(occurred > hour_ago)
            hour, day = (
                await self.session.execute(
                    scoped(
                        select(in_hour, func.count(Reward.id)).where(
                            Reward.customer_id == self.referrer.id,
                            Reward.recipient == "REFERRER",
                            Reward.created_at > day_ago - MAX_CLOCK_SKEW,
                            occurred > day_ago,
                            occurred <= self.at,
                        ),
                        self.merchant_id,
                    )
                )
            ).one()
            return hour or 0, day or 0

        return await self._cached("rewards_in_day", load)

    async def clicks_in_day(self) -> tuple[int, int]:
        """Clicks on the referrer's codes of the program in the hour / the day before this moment
        (a click's time is when it happened: `trackClick(occurredAt)` for imports)."""
        if "clicks_in_day" not in self._cache:
            await self.prefetch()
        return self._cache["clicks_in_day"]

    async def referrals_before_day(self) -> int:
        """The referrer's referrals in the program in the BASELINE_WINDOW up to a day before this
        moment: their usual pace, which a burst is measured against."""
        if "referrals_before_day" not in self._cache:
            await self.prefetch()
        return self._cache["referrals_before_day"]

    async def referrer_of(self, customer_id: uuid.UUID) -> ChainStep | None:
        """The referral that brought `customer_id` into the program (id, referrer_id), if any."""

        async def load() -> Any:
            row = (
                await self.session.execute(
                    scoped(
                        select(Referral.id, Referral.referrer_id).where(
                            Referral.program_id == self.program_id, Referral.referee_id == customer_id
                        ),
                        self.merchant_id,
                    ).limit(1)
                )
            ).first()
            return ChainStep(row.id, row.referrer_id) if row is not None else None

        return await self._cached("chain_step:" + str(customer_id), load)

    async def referee_identifiers(self) -> list[RefereeIdentifier]:
        async def load() -> Any:
            query = select(
                CustomerIdentifier.kind,
                CustomerIdentifier.value,
                CustomerIdentifier.value_hash,
                CustomerIdentifier.first_seen_at,
                CustomerIdentifier.last_seen_at,
            ).where(
                merchant_is(CustomerIdentifier, self.merchant_id, use_index=False),
                CustomerIdentifier.customer_id == self.referee.id,
            )
            return [RefereeIdentifier(*row) for row in await self.session.execute(query.limit(500))]

        return await self._cached("referee_identifiers", load)

    async def shared_with_referrer(self, kind: str) -> list[Shared]:
        async def load() -> Any:
            mine, theirs = aliased(CustomerIdentifier), aliased(CustomerIdentifier)
            rows = await self.session.execute(
                select(mine.kind, mine.value, mine.last_seen_at, theirs.last_seen_at.label("theirs_seen"))
                .select_from(mine)
                .join(
                    theirs,
                    and_(_same_identifier(theirs, mine), theirs.customer_id == self.referrer.id),
                )
                .where(merchant_is(mine, self.merchant_id, use_index=False), mine.customer_id == self.referee.id)
                .limit(MAX_MATCHES)
            )
            return [Shared(r.kind, _readable(r.value), r.last_seen_at, r.theirs_seen) for r in rows]

        return [s for s in await self._cached("shared_with_referrer", load) if s.kind == kind]

    async def other_referees(self, kind: str) -> list[OtherReferee]:
        """Other referees of this program seen with one of the referee's devices or cards, or
        (within the last `IP_WINDOW`) IP addresses, the three kinds at once, newest referral first."""

        async def load() -> Any:
            since = self.at - IP_WINDOW
            wanted: dict[str, list[str]] = {kind: [] for kind in REUSE_KINDS}
            mine = {(i.kind, i.value_hash): i.value for i in await self.referee_identifiers()}
            for i in await self.referee_identifiers():
                if i.kind in REUSE_KINDS and i.first_seen_at <= self.at and (i.kind != "IP" or i.last_seen_at >= since):
                    wanted[i.kind].append(i.value_hash)
            if not any(wanted.values()):
                return []
            # Two steps, so that both databases start from the identifiers' index (one join let
            # SQLite start from every referral of the program): who else was seen with them,
            # then which of those are referees of this program. Usually the first finds no one.
            prefetched = self._cache.get("seen_with")
            if prefetched is not None:  # read for every identifier the referee has: keep the wanted ones
                wanted_pairs = {(kind, h) for kind, hashes in wanted.items() for h in hashes}
                seen = [r for r in prefetched if (r.kind, r.value_hash) in wanted_pairs]
            else:
                seen = [
                    _Seen(r.kind, r.value_hash, r.customer_id, r.last_seen_at)
                    for r in await self.session.execute(
                        _SEEN_WITH,
                        {
                            "merchant_id": self.merchant_id,
                            "referee_id": self.referee.id,
                            "at": self.at,
                            "since": since,
                            "devices": wanted["DEVICE"],
                            "payments": wanted["PAYMENT"],
                            "ips": wanted["IP"],
                        },
                    )
                ]
            if not seen:
                return []
            referees = {
                row.referee_id: row
                for row in await self.session.execute(
                    _REFEREES_AMONG,
                    {
                        "merchant_id": self.merchant_id,
                        "program_id": self.program_id,
                        "customer_ids": sorted({r.customer_id for r in seen}),
                    },
                )
            }
            seen.sort(key=lambda r: (r.kind, r.value_hash, str(r.customer_id)))  # the same order however read
            found = [  # the referee's own value (the other customer's may be erased)
                OtherReferee(
                    r.kind,
                    _readable(mine[(r.kind, r.value_hash)]),
                    r.customer_id,
                    referee.external_id,
                    referee.id,
                    referee.referred_at,
                    r.last_seen_at,
                )
                for r in seen
                if (referee := referees.get(r.customer_id)) is not None
            ]
            return sorted(found, key=lambda o: o.referred_at, reverse=True)

        return [o for o in await self._cached("other_referees", load) if o.kind == kind]

    async def referrers_referrals(self, *, since: datetime | None = None, limit: int = RECENT_REFERRALS) -> list[RecentReferral]:
        """The referrer's latest referrals in the program up to this moment (this one
        excluded), with each referee's email (index on referrer and time)."""

        async def load() -> Any:
            query = scoped(
                select(Referral.id, Referral.referred_at, Customer.email_canonical, Customer.external_id)
                .join(Customer, Customer.id == Referral.referee_id)
                .where(
                    Referral.referrer_id == self.referrer.id,
                    not_an_index_key(Referral.program_id == self.program_id),  # by (referrer, time)
                    Referral.referred_at <= self.at,
                    Referral.id != self.referral_id,
                ),
                self.merchant_id,
            )
            if since is not None:
                query = query.where(Referral.referred_at > since)
            rows = await self.session.execute(query.order_by(Referral.referred_at.desc()).limit(limit))
            return [RecentReferral(r.id, r.referred_at, r.email_canonical, r.external_id) for r in rows]

        return await self._cached(f"referrals_since:{since.isoformat() if since else None}:{limit}", load)

    async def strangers_on_ip(self, ip: str, *, enough: int) -> int:
        """Customers seen behind `ip` who are neither party nor referred in this program, counted
        up to `enough`. Such strangers make an address a shared network (a carrier's CGNAT, an
        office, a campus), where an address or browser in common means little; a farm's or a
        self-referrer's address is used by the referees they make."""

        async def load() -> Any:
            rows = await self.session.execute(
                _STRANGERS_ON_IP,
                {
                    "merchant_id": self.merchant_id,
                    "value_hash": lookup_hash(self.merchant_id, "IP", ip),
                    "parties": [self.referrer.id, self.referee.id],
                    "program_id": self.program_id,
                    "enough": enough,
                },
            )
            return len(rows.all())

        return await self._cached(f"strangers_on_ip:{ip}:{enough}", load)

    async def list_entries(self) -> list[FraudListEntry]:
        """The merchant's list entries that name the referee's identifiers, either party's
        email or domain, or either customer (trusted / banned), plus every IP range."""

        async def load() -> Any:
            if "named_list_entries" in self._cache:  # prefetched: only the identifiers' entries may be left to read
                found = list(self._cache["named_list_entries"])
                if self._cache.get("listed_with_identifiers"):
                    return found
                by_kind: dict[str, list[str]] = {kind: [] for kind in _LISTED_IDENTIFIERS}
                candidates = [(i.kind, i.value) for i in await self.referee_identifiers()]
                for kind, value in self._identifier_candidates(candidates):
                    by_kind[kind.value].append(value)
                if any(by_kind.values()):
                    listed = await self.session.execute(
                        _LISTED_FOR_IDENTIFIERS,
                        {
                            "merchant_id": self.merchant_id,
                            "devices": by_kind["DEVICE"],
                            "payments": by_kind["PAYMENT"],
                            "ips": by_kind["IP"],
                        },
                    )
                    known = {entry.id for entry in found}  # some may have been read with the prefetch
                    found += [
                        FraudListEntry(id=r.id, merchant_id=self.merchant_id, kind=r.kind, value=r.value, note=r.note)
                        for r in listed
                        if r.id not in known
                    ]
                return found
            branches = [
                and_(FraudListEntry.merchant_id == self.merchant_id, FraudListEntry.kind == k, FraudListEntry.value == v)
                for k, v in [
                    *self._named_candidates(),
                    *self._identifier_candidates([(i.kind, i.value) for i in await self.referee_identifiers()]),
                ]
            ]
            if any(i.kind == "IP" for i in await self.referee_identifiers()):
                branches.append(and_(FraudListEntry.merchant_id == self.merchant_id, FraudListEntry.kind == ListKind.IP_RANGE))
            return list((await self.session.scalars(select(FraudListEntry).where(or_(*branches)))).all())

        return await self._cached("list_entries", load)

    def _named_candidates(self) -> list[tuple[ListKind, str]]:
        """List entries that would name either party: as a customer, by email (also as the
        keyed hash an erased customer's entries hold, app.privacy.erasure) or by domain."""
        candidates: list[tuple[ListKind, str]] = []
        for customer in (self.referee, self.referrer):
            candidates += [(kind, str(customer.id)) for kind in _CUSTOMER_MARKS]
            if customer.email_canonical:
                candidates.append((ListKind.EMAIL, customer.email_canonical))
                candidates.append(
                    (ListKind.EMAIL, hashed_value(self.merchant_id, ListKind.EMAIL.value, customer.email_canonical))
                )
                candidates += [(ListKind.DOMAIN, d) for d in domain_and_parents(customer.email_canonical)]
        return candidates

    def _identifier_candidates(self, identifiers: list[tuple[str, str | None]]) -> list[tuple[ListKind, str]]:
        """List entries that would name one of the referee's devices, cards or addresses
        (given as (kind, value)), as they are or as their keyed hash."""
        candidates: list[tuple[ListKind, str]] = []
        for identifier_kind, value in identifiers:
            if identifier_kind in _LISTED_IDENTIFIERS and value is not None:
                kind = ListKind(identifier_kind)
                candidates += [(kind, value), (kind, hashed_value(self.merchant_id, kind.value, value))]
        return candidates


def _same_identifier(theirs: Any, mine: Any) -> Any:
    """Join condition: two customers' identifier rows (aliases of CustomerIdentifier) for the same
    identifier of the same merchant (by its keyed hash: the values are encrypted)."""
    return and_(theirs.merchant_id == mine.merchant_id, theirs.kind == mine.kind, theirs.value_hash == mine.value_hash)


def _occurred_at_of_reward_action(merchant: Any) -> Any:
    """When a reward's action occurred, read by the action's primary key for each reward.

    Not a join: the velocity window ends now, past the histogram of the last ANALYZE for the
    actions written since, so PostgreSQL thought the window held one action and, for each of
    the referrer's rewards, read the merchant's actions of the window by (merchant,
    occurred_at): 7,000 rows for 5 rewards in a benchmark, more the busier the shop."""
    return (
        select(Action.occurred_at).where(Action.id == Reward.trigger_action_id, merchant_is(Action, merchant)).scalar_subquery()
    )


@lru_cache(maxsize=1)
def _prefetch_statement() -> Any:
    """`Case.prefetch`'s query, built once with bind parameters: SQLAlchemy then compiles it
    once and reuses it (building a statement this size per check cost more than running it).
    Its lists are unseen by the planner (`one_of`), so PostgreSQL keeps its generic plan."""
    referee, referrer = bindparam("referee_id", type_=Uuid()), bindparam("referrer_id", type_=Uuid())
    merchant, at = bindparam("merchant_id", type_=Uuid()), bindparam("at", type_=UTCDateTime())
    day_ago = bindparam("day_ago", type_=UTCDateTime())
    mine, theirs, identifier = aliased(CustomerIdentifier), aliased(CustomerIdentifier), aliased(CustomerIdentifier)
    # Every branch names the merchant (app.tenancy); on customer_identifiers as a filter only
    # (`use_index=False`): they are found by customer, and SQLite would otherwise read the
    # merchant's identifiers of a kind instead.
    # Encrypted columns are read as stored (`_raw`) and decrypted per part in Python: each column
    # has its own key context, and a UNION ALL column has one type for every branch.
    referee_ids = (
        select(
            CustomerIdentifier.id,
            CustomerIdentifier.kind,
            _raw(CustomerIdentifier.value).label("value"),
            CustomerIdentifier.value_hash,
            CustomerIdentifier.first_seen_at,
            CustomerIdentifier.last_seen_at,
        )
        .where(merchant_is(CustomerIdentifier, merchant, use_index=False), CustomerIdentifier.customer_id == referee)
        .limit(500)
        .subquery()
    )
    shared = (
        select(mine.kind, _raw(mine.value).label("value"), mine.last_seen_at, theirs.last_seen_at.label("theirs_seen"))
        .join(
            theirs,
            and_(_same_identifier(theirs, mine), theirs.customer_id == referrer),
        )
        .where(merchant_is(mine, merchant, use_index=False), mine.customer_id == referee)
        .limit(MAX_MATCHES)
        .subquery()
    )
    recent = (
        scoped(
            select(
                Referral.id, Referral.referred_at, _raw(Customer.email_canonical).label("email_canonical"), Customer.external_id
            )
            .join(Customer, Customer.id == Referral.referee_id)
            .where(
                Referral.referrer_id == referrer,
                not_an_index_key(Referral.program_id == bindparam("program_id", type_=Uuid())),  # by (referrer, time)
                Referral.referred_at <= at,
                Referral.id != bindparam("referral_id", type_=Uuid()),
                Referral.referred_at > day_ago,
            ),
            merchant,
        )
        .order_by(Referral.referred_at.desc())
        .limit(RECENT_REFERRALS)
        .subquery()
    )
    occurred = _occurred_at_of_reward_action(merchant)
    rewards_in_day = scoped(
        select(
            func.count(Reward.id).filter(occurred > bindparam("hour_ago", type_=UTCDateTime())).label("hour"),
            func.count(Reward.id).label("day"),
        ).where(
            Reward.customer_id == referrer,
            Reward.recipient == "REFERRER",
            # created after its action was recorded, which is at most MAX_CLOCK_SKEW before it
            # occurred: lets the index on (customer, created_at) skip older rewards
            Reward.created_at > bindparam("day_ago_skewed", type_=UTCDateTime()),
            occurred > day_ago,
            occurred <= at,
        ),
        merchant,
    ).subquery()
    clicks_in_day = scoped(
        select(
            func.count(Click.id).filter(Click.created_at > bindparam("hour_ago", type_=UTCDateTime())).label("hour"),
            func.count(Click.id).label("day"),
        )
        .join(ReferralCode, ReferralCode.id == Click.code_id)
        .where(
            ReferralCode.customer_id == referrer,
            ReferralCode.program_id == bindparam("program_id", type_=Uuid()),
            Click.created_at > day_ago,
            Click.created_at <= at,
        ),
        merchant,
    ).subquery()
    history = scoped(
        select(func.count(Referral.id).label("n")).where(
            Referral.referrer_id == referrer,
            not_an_index_key(Referral.program_id == bindparam("program_id", type_=Uuid())),  # by (referrer, time)
            Referral.referred_at > bindparam("baseline_since", type_=UTCDateTime()),
            Referral.referred_at <= day_ago,
        ),
        merchant,
    ).subquery()
    up_the_chain = (
        scoped(
            select(Referral.id, Referral.referrer_id).where(
                Referral.program_id == bindparam("program_id", type_=Uuid()), Referral.referee_id == referrer
            ),
            merchant,
        )
        .limit(1)
        .subquery()
    )
    # The merchant inside each branch, so that SQLite looks each one up in the (merchant, kind,
    # value) index (an OR with the merchant outside read all the merchant's entries).
    of_merchant = FraudListEntry.merchant_id == merchant
    named = or_(
        *(
            and_(of_merchant, FraudListEntry.kind == mark, one_of(FraudListEntry.value, "customer_ids", unseen_by_planner=True))
            for mark in _CUSTOMER_MARKS
        ),
        and_(of_merchant, FraudListEntry.kind == ListKind.EMAIL, one_of(FraudListEntry.value, "emails", unseen_by_planner=True)),
        and_(
            of_merchant, FraudListEntry.kind == ListKind.DOMAIN, one_of(FraudListEntry.value, "domains", unseen_by_planner=True)
        ),
        *_listed_for_identifiers(merchant, "listed_devices", "listed_payments", "listed_ips", unseen_by_planner=True),
        and_(
            of_merchant,
            FraudListEntry.kind == ListKind.IP_RANGE,
            select(identifier.id)
            .where(
                merchant_is(identifier, merchant, use_index=False),
                identifier.customer_id == referee,
                identifier.kind == "IP",
            )
            .exists(),
        ),
    )
    entries = select(FraudListEntry.id, FraudListEntry.kind, FraudListEntry.value, FraudListEntry.note).where(named).subquery()
    payout, paid_too = aliased(CustomerIdentifier), aliased(CustomerIdentifier)
    payout_sharers = (
        scoped(
            select(payout.customer_id, paid_too.customer_id.label("other_id"), Customer.external_id)
            .join(
                paid_too,
                and_(_same_identifier(paid_too, payout), paid_too.customer_id != payout.customer_id),
            )
            .join(Customer, Customer.id == paid_too.customer_id)
            .where(payout.customer_id.in_([referrer, referee]), payout.kind == IdentifierKind.PAYOUT_ACCOUNT.value),
            merchant,
            use_index=False,  # the parties' identifiers by customer, not the merchant's by kind
        )
        .order_by(paid_too.customer_id)
        .limit(MAX_MATCHES)
        .subquery()
    )
    seen = _seen_with(merchant, referee, at, "seen_devices", "seen_payments", "seen_ips", unseen_by_planner=True).subquery()
    text_, when, number, uuid_ = String(), UTCDateTime(), Integer(), Uuid()

    def row(
        part: str,
        *,
        kind: Any = None,
        value: Any = None,
        id_: Any = None,
        other: Any = None,
        t1: Any = None,
        t2: Any = None,
        n1: Any = None,
        n2: Any = None,
        note: Any = None,
    ) -> Select[Any]:
        return select(
            literal(part, text_).label("part"),
            _typed(kind, text_, "kind"),
            _typed(value, text_, "value"),
            _typed(id_, uuid_, "id"),
            _typed(other, uuid_, "other"),
            _typed(t1, when, "t1"),
            _typed(t2, when, "t2"),
            _typed(n1, number, "n1"),
            _typed(n2, number, "n2"),
            _typed(note, text_, "note"),
        )

    return union_all(
        row(
            "identifier",
            kind=referee_ids.c.kind,
            value=referee_ids.c.value,
            id_=referee_ids.c.id,
            t1=referee_ids.c.first_seen_at,
            t2=referee_ids.c.last_seen_at,
            note=referee_ids.c.value_hash,
        ),
        row("shared", kind=shared.c.kind, value=shared.c.value, t1=shared.c.last_seen_at, t2=shared.c.theirs_seen),
        row("recent", value=recent.c.email_canonical, id_=recent.c.id, t1=recent.c.referred_at, note=recent.c.external_id),
        row("rewards", n1=rewards_in_day.c.hour, n2=rewards_in_day.c.day),
        row("clicks", n1=clicks_in_day.c.hour, n2=clicks_in_day.c.day),
        row("history", n1=history.c.n),
        row("chain", id_=up_the_chain.c.id, other=up_the_chain.c.referrer_id),
        row("list", kind=entries.c.kind, value=entries.c.value, id_=entries.c.id, note=entries.c.note),
        row("payout", id_=payout_sharers.c.customer_id, other=payout_sharers.c.other_id, note=payout_sharers.c.external_id),
        row("seen", kind=seen.c.kind, id_=seen.c.customer_id, t1=seen.c.last_seen_at, note=seen.c.value_hash),
    )


def _listed_for_identifiers(
    merchant: Any, devices: str, payments: str, ips: str, *, unseen_by_planner: bool = False
) -> list[Any]:
    """The merchant's list entries naming a device, card or address among the values of the
    list parameters named (the values as they are and as their keyed hashes); the merchant in
    each branch, for SQLite's index lookups. `unseen_by_planner`: see `one_of`."""
    of_merchant = FraudListEntry.merchant_id == merchant
    return [
        and_(
            of_merchant,
            FraudListEntry.kind == ListKind.DEVICE,
            one_of(FraudListEntry.value, devices, unseen_by_planner=unseen_by_planner),
        ),
        and_(
            of_merchant,
            FraudListEntry.kind == ListKind.PAYMENT,
            one_of(FraudListEntry.value, payments, unseen_by_planner=unseen_by_planner),
        ),
        and_(
            of_merchant,
            FraudListEntry.kind == ListKind.IP,
            one_of(FraudListEntry.value, ips, unseen_by_planner=unseen_by_planner),
        ),
    ]


# Columns, made into entries as the prefetched ones are: no ORM loading for a read-only check.
_LISTED_FOR_IDENTIFIERS = select(FraudListEntry.id, FraudListEntry.kind, FraudListEntry.value, FraudListEntry.note).where(
    or_(*_listed_for_identifiers(bindparam("merchant_id", type_=Uuid()), "devices", "payments", "ips"))
)


class _Column:
    """An encrypted column's own decryption, for values read as stored (`_raw`)."""

    def __init__(self, column: Any) -> None:
        self.type = column.type

    def decrypt(self, stored: str | None) -> str | None:
        return self.type.process_result_value(stored, None)


def _raw(column: Any) -> Any:
    return type_coerce(column, Text())


_IDENTIFIER_VALUE = _Column(CustomerIdentifier.__table__.c.value)
_EMAIL_CANONICAL = _Column(Customer.__table__.c.email_canonical)


def _seen_with(
    merchant: Any, referee: Any, at: Any, devices: str, payments: str, ips: str, *, unseen_by_planner: bool = False
) -> Select[str, str, uuid.UUID, datetime]:
    """Other customers seen with the devices, cards or (lately) addresses whose keyed hashes
    the list parameters named hold, before `at`. `unseen_by_planner`: see `one_of`."""
    same_merchant = CustomerIdentifier.merchant_id == merchant
    return (
        select(
            CustomerIdentifier.kind,
            CustomerIdentifier.value_hash,
            CustomerIdentifier.customer_id,
            CustomerIdentifier.last_seen_at,
        )
        .where(
            # The merchant inside each branch: SQLite then looks each branch up in the
            # (merchant, kind, value_hash) index instead of reading all the merchant's rows.
            or_(
                and_(
                    same_merchant,
                    CustomerIdentifier.kind == "DEVICE",
                    one_of(CustomerIdentifier.value_hash, devices, unseen_by_planner=unseen_by_planner),
                ),
                and_(
                    same_merchant,
                    CustomerIdentifier.kind == "PAYMENT",
                    one_of(CustomerIdentifier.value_hash, payments, unseen_by_planner=unseen_by_planner),
                ),
                # with the time inside the branch, a carrier's address is a range scan of the recent ones
                and_(
                    same_merchant,
                    CustomerIdentifier.kind == "IP",
                    one_of(CustomerIdentifier.value_hash, ips, unseen_by_planner=unseen_by_planner),
                    CustomerIdentifier.last_seen_at >= bindparam("since", type_=UTCDateTime()),
                ),
            ),
            CustomerIdentifier.customer_id != referee,
            CustomerIdentifier.first_seen_at <= at,  # not what happened after this moment
        )
        .limit(MAX_SEEN)
    )


# `Case.other_referees`' two steps, built once, for a referee with identifiers the prefetch
# did not read for (see `_prefetch_statement`).
_SEEN_WITH = _seen_with(
    bindparam("merchant_id", type_=Uuid()),
    bindparam("referee_id", type_=Uuid()),
    bindparam("at", type_=UTCDateTime()),
    "devices",
    "payments",
    "ips",
)
_REFEREES_AMONG = scoped(
    select(Referral.id, Referral.referee_id, Referral.referred_at, Customer.external_id)
    .join(Customer, Customer.id == Referral.referee_id)
    .where(
        Referral.program_id == bindparam("program_id", type_=Uuid()),
        one_of(Referral.referee_id, "customer_ids"),
    ),
    bindparam("merchant_id", type_=Uuid()),
)


def domain_and_parents(email: str) -> list[str]:
    """`a@mail.x.example.com` -> ["mail.x.example.com", "x.example.com", "example.com"]."""
    labels = email.rpartition("@")[2].split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]
