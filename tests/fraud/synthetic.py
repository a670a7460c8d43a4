"""A labelled synthetic shop for measuring the fraud engine: legitimate referrals that look
suspicious (households behind one IP, colleagues behind an office NAT, friends on one mobile
carrier's CGNAT addresses, popular referrers) mixed with seeded fraud (self-referral under an
alias, device farms, rings, disposable mailboxes, velocity bursts).

`generate` builds a deterministic dataset from a seed: people with names, mailboxes, devices,
browsers, networks, cards and addresses, and a ~30-day timeline of their SIGNUPs and PURCHASEs
(occurredAt in the past, so the engine's windows count on when things happened). `run` feeds it
through `record_action` in-process, one committed transaction per action as the API does, and
`measure` reads back what the engine decided and scores it against the labels.
"""

from __future__ import annotations

import bisect
import random
import statistics
import string
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.actions import service as actions
from app.db import utcnow
from app.errors import DomainError
from app.fraud import clearance
from app.fraud import policy as policies
from app.fraud.models import FraudDecision, FraudReview, Outcome, ReviewStatus
from app.merchants import audit
from app.merchants import service as merchants
from app.referrals import codes, programs
from app.referrals.models import Action, CodeStyle, Customer, ProgramStatus, Referral, ReferralStatus
from app.rewards import lifecycle, rules
from app.rewards.models import Recipient, Reward, RewardKind
from app.rewards.rules import RuleDefinition, RuleSpec
from app.worker import outbox, registry

LEGIT_KINDS = ("friends", "household", "colleagues", "mobile_carrier", "popular_referrer")
FRAUD_KINDS = ("alias", "device_farm", "ring", "disposable_email", "velocity_burst")

# Which fraud kind a firing signal points at: a flagged referral is attributed to every kind
# one of its fired signals names (precision per kind = how often that attribution is fraud).
SIGNAL_KINDS = {
    "same_customer": "alias",
    "same_email": "alias",
    "similar_email": "alias",
    "same_name_domain": "alias",
    "same_device": "alias",
    "same_payment": "alias",
    "same_address": "alias",
    "same_ip_user_agent": "alias",
    "shared_ip": "alias",
    "device_reuse": "device_farm",
    "payment_reuse": "device_farm",
    "ip_burst": "device_farm",
    "ring": "ring",
    "ring_candidate": "ring",
    "disposable_email": "disposable_email",
    "referrals_per_hour": "velocity_burst",
    "referrals_per_day": "velocity_burst",
    "rewards_per_hour": "velocity_burst",
    "rewards_per_day": "velocity_burst",
    "patterned_mailboxes": "velocity_burst",
    "referrals_above_baseline": "velocity_burst",
    "clicks_per_hour": "velocity_burst",
    "clicks_per_day": "velocity_burst",
}

FIRST_NAMES = (
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Christopher",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Sandra",
    "Mark",
    "Ashley",
    "Steven",
    "Emily",
    "Andrew",
    "Michelle",
    "Joshua",
    "Amanda",
    "Kevin",
    "Melissa",
    "Brian",
    "Stephanie",
    "Jose",
    "Rebecca",
    "Maria",
    "Carlos",
    "Sofia",
    "Luis",
    "Camila",
    "Wei",
    "Mei",
    "Hiroshi",
    "Yuki",
    "Priya",
    "Arjun",
    "Aisha",
    "Omar",
    "Fatima",
    "Ahmed",
    "Olga",
    "Dmitri",
    "Anna",
    "Lars",
    "Ingrid",
    "Chloe",
    "Lucas",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Ava",
    "Ethan",
    "Zoe",
    "Mateo",
    "Isabella",
    "Kwame",
    "Amara",
    "Tariq",
    "Leila",
    "Siobhan",
    "Connor",
    "Niamh",
    "Rafael",
    "Beatriz",
)
LAST_NAMES = (
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Kowalski",
    "Novak",
    "Schmidt",
    "Fischer",
    "Rossi",
    "Bianchi",
    "Dubois",
    "Moreau",
    "Tanaka",
    "Suzuki",
    "Kim",
    "Park",
    "Chen",
    "Wang",
    "Patel",
    "Shah",
    "Okafor",
    "Mensah",
    "Haddad",
    "Khan",
    "Ivanova",
    "Petrov",
    "Larsen",
    "Johansson",
    "O'Brien",
    "Murphy",
    "Christensen",
    "Vasquez",
    "Fitzgerald",
    "Abernathy",
    "Delacroix",
    "Castellanos",
)
FREE_MAIL = (
    ("gmail.com", 45),
    ("yahoo.com", 12),
    ("outlook.com", 12),
    ("hotmail.com", 8),
    ("icloud.com", 12),
    ("aol.com", 3),
    ("proton.me", 4),
    ("comcast.net", 4),
)
COMPANY_DOMAINS = (
    "northwindtraders.com",
    "globex.io",
    "initech.com",
    "umbrella-labs.com",
    "hooli.xyz",
    "vandelay.com",
    "piedpiper.net",
    "soylent.co",
    "wonka-industries.com",
    "stark-eng.com",
    "acme-logistics.com",
    "bluthco.com",
)
DISPOSABLE_DOMAINS = (
    "mailinator.com",
    "yopmail.com",
    "guerrillamail.com",
    "sharklasers.com",
    "10minutemail.com",
    "maildrop.cc",
    "temp-mail.org",
    "dispostable.com",
    "getnada.com",
    "trashmail.de",
    "grr.la",
    "mohmal.com",
    "tempr.email",
    "discard.email",
    "emailfake.com",
    "mail.tm",
    "fakeinbox.com",
)
DISPOSABLE_PARENTS_FOR_SUBDOMAINS = ("mailinator.com", "trashmail.de", "yopmail.com", "discard.email")

# Real user agents. Chrome's reduced UA makes every Android/Windows user of one version send
# the same string, which is what networks shared by many people look like.
UA_IPHONE_17 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.6 Mobile/15E148 Safari/604.1"
)
UA_IPHONE_18 = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
UA_ANDROID_CHROME = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)
UA_SAMSUNG = (
    "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
    "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"
)
UA_WIN_CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
UA_WIN_EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0"
)
UA_WIN_FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
UA_MAC_SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15"
)
UA_MAC_CHROME = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
PHONE_UAS = ((UA_IPHONE_18, 30), (UA_IPHONE_17, 20), (UA_ANDROID_CHROME, 38), (UA_SAMSUNG, 12))
DESKTOP_UAS = ((UA_WIN_CHROME, 45), (UA_MAC_SAFARI, 15), (UA_MAC_CHROME, 15), (UA_WIN_EDGE, 15), (UA_WIN_FIREFOX, 10))
CORPORATE_UAS = (UA_WIN_CHROME, UA_WIN_EDGE)

RESIDENTIAL_PREFIXES = ("73", "98", "24", "71", "76", "67", "174", "108", "68", "69", "75", "99", "86", "82")
# Mobile carriers put many subscribers behind a few public addresses (CGNAT).
CARRIERS = {
    "t-mobile": ("172.58.12.41", "172.58.12.87", "172.58.13.6", "172.58.140.22"),
    "verizon": ("174.204.6.19", "174.204.6.200", "174.204.71.3", "174.204.71.98"),
    "at&t": ("166.205.141.10", "166.205.141.77", "166.205.150.4", "166.205.150.51"),
}
STREETS = (
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Sunset",
    "Highland",
    "Ridge",
    "Church",
    "Mill",
    "River",
    "Willow",
    "Franklin",
    "Jefferson",
    "Lincoln",
    "Madison",
    "Spring",
)
STREET_TYPES = (("Street", "St"), ("Avenue", "Ave"), ("Road", "Rd"), ("Drive", "Dr"), ("Lane", "Ln"), ("Court", "Ct"))
CITIES = (
    ("Austin", "TX", "787"),
    ("Denver", "CO", "802"),
    ("Portland", "OR", "972"),
    ("Columbus", "OH", "432"),
    ("Raleigh", "NC", "276"),
    ("Madison", "WI", "537"),
    ("Tampa", "FL", "336"),
    ("Phoenix", "AZ", "850"),
    ("Boston", "MA", "021"),
    ("Seattle", "WA", "981"),
    ("Chicago", "IL", "606"),
    ("Atlanta", "GA", "303"),
    ("Nashville", "TN", "372"),
    ("Sacramento", "CA", "958"),
    ("Pittsburgh", "PA", "152"),
)


@dataclass(frozen=True)
class Device:
    id: str
    user_agent: str
    mobile: bool


@dataclass
class Person:
    external_id: str
    first: str
    last: str
    email: str
    devices: list[Device]
    home_ip: str
    carrier: str
    card: str
    address: dict[str, str]
    office_ip: str | None = None

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    @property
    def phone(self) -> Device:
        return next((d for d in self.devices if d.mobile), self.devices[0])

    @property
    def computer(self) -> Device:
        return next((d for d in self.devices if not d.mobile), self.devices[0])


@dataclass(frozen=True)
class Event:
    at: datetime
    type: str  # SIGNUP or PURCHASE
    customer: str
    key: str
    name: str | None = None
    email: str | None = None
    code_of: str | None = None  # the referrer whose code the action carries
    device_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    payment_fingerprint: str | None = None
    shipping_address: dict[str, str] | None = None
    amount: int | None = None
    seq: int = 0  # creation order: a SIGNUP stays before its PURCHASE at the same instant


@dataclass(frozen=True)
class Label:
    kind: str
    variant: str

    @property
    def fraud(self) -> bool:
        return self.kind in FRAUD_KINDS


@dataclass
class Dataset:
    code_holders: list[str]  # customers given a referral code before the timeline starts
    events: list[Event]  # in occurredAt order
    labels: dict[str, Label]  # referee external id -> what their referral is


class Generator:
    """Builds the dataset. Every random choice comes from one `random.Random(seed)`."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        # The timeline ends at the last Monday 00:00 UTC before `now`: weekdays and hours of day,
        # which decide who is at the office, are then the same whenever the dataset is built.
        latest = (now - timedelta(hours=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        self.end = latest - timedelta(days=latest.weekday())
        self.start = self.end - timedelta(days=30)
        self.events: list[Event] = []
        self.labels: dict[str, Label] = {}
        self.code_holders: list[str] = []
        self._code_holder_set: set[str] = set()
        self._signed_up: set[str] = set()
        self._numbers = Counter()
        self._used_locals: set[str] = set()
        # Offices: a mail domain, one public address (NAT), a standard browser on the work laptops.
        self.companies = [(domain, self.residential_ip(), self.rng.choice(CORPORATE_UAS)) for domain in COMPANY_DOMAINS]

    # -- identities -------------------------------------------------------------------------

    def _next_id(self, prefix: str) -> str:
        self._numbers[prefix] += 1
        return f"{prefix}_{self._numbers[prefix]:05d}"

    def _weighted(self, options: Iterable[tuple[str, int]]) -> str:
        values, weights = zip(*options, strict=True)
        return self.rng.choices(values, weights)[0]

    def _hex(self, length: int) -> str:
        return "".join(self.rng.choices("0123456789abcdef", k=length))

    def device(self, *, mobile: bool, user_agent: str | None = None) -> Device:
        ua = user_agent or self._weighted(PHONE_UAS if mobile else DESKTOP_UAS)
        return Device(str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), ua, mobile)

    def residential_ip(self) -> str:
        return f"{self.rng.choice(RESIDENTIAL_PREFIXES)}.{self.rng.randint(1, 254)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    def card(self) -> str:
        return "".join(self.rng.choices(string.ascii_letters + string.digits, k=16))

    def address(self) -> dict[str, str]:
        city, region, zip_prefix = self.rng.choice(CITIES)
        street_type = self.rng.choice(STREET_TYPES)
        address = {
            "line1": f"{self.rng.randint(1, 9800)} {self.rng.choice(STREETS)} {street_type[0]}",
            "city": city,
            "region": region,
            "postalCode": f"{zip_prefix}{self.rng.randint(1, 99):02d}",
            "country": "US",
        }
        if self.rng.random() < 0.3:
            address["line2"] = f"Apt {self.rng.randint(1, 40)}{self.rng.choice('ABCD')}"
        return address

    def rewritten(self, address: dict[str, str]) -> dict[str, str]:
        """The same place as another member of the household types it."""
        copy = dict(address)
        for long, short in STREET_TYPES:
            if copy["line1"].endswith(f" {long}") and self.rng.random() < 0.5:
                copy["line1"] = copy["line1"][: -len(long)] + short
        if "line2" in copy and self.rng.random() < 0.5:
            copy["line2"] = copy["line2"].replace("Apt ", "#")
        if self.rng.random() < 0.3:
            copy["line1"] = copy["line1"].upper()
        return copy

    def mailbox(self, first: str, last: str, domain: str) -> str:
        f, la = first.lower(), "".join(c for c in last.lower() if c.isalpha())
        styles = [
            f"{f}.{la}",
            f"{f}{la}",
            f"{f}_{la}",
            f"{f[0]}{la}",
            f"{f}{la[0]}",
            f"{la}.{f}",
            f"{f}.{la}{self.rng.randint(1, 99)}",
            f"{f}{self.rng.randint(1960, 2005)}",
            f"{f[0]}{la}{self.rng.randint(10, 999)}",
            f"{f}.{la[0]}{self.rng.randint(1, 9)}",
        ]
        local = self.rng.choice(styles)
        if domain == "gmail.com":
            local = local.replace("_", ".")  # gmail has no underscores
        return self.unique(local, domain)

    def unique(self, local: str, domain: str) -> str:
        while f"{local}@{domain}" in self._used_locals:
            local = f"{local}{self.rng.randint(0, 9)}"
        self._used_locals.add(f"{local}@{domain}")
        return f"{local}@{domain}"

    def person(
        self,
        *,
        first: str | None = None,
        last: str | None = None,
        domain: str | None = None,
        home_ip: str | None = None,
        address: dict[str, str] | None = None,
        carrier: str | None = None,
        office_ip: str | None = None,
        devices: list[Device] | None = None,
    ) -> Person:
        """Someone new; what is not given is drawn (a phone, and a computer for most)."""
        first, last = first or self.rng.choice(FIRST_NAMES), last or self.rng.choice(LAST_NAMES)
        email = self.mailbox(first, last, domain or self._weighted(FREE_MAIL))
        if devices is None:
            devices = [self.device(mobile=True)]
            if self.rng.random() < 0.7:
                devices.append(self.device(mobile=False))
        return Person(
            external_id=self._next_id("cus"),
            first=first,
            last=last,
            email=email,
            devices=devices,
            home_ip=home_ip or self.residential_ip(),
            carrier=carrier or self.rng.choice(list(CARRIERS)),
            card=self.card(),
            address=address or self.address(),
            office_ip=office_ip,
        )

    # -- sessions and actions ---------------------------------------------------------------

    def cgnat_ip(self, person: Person) -> str:
        return self.rng.choice(CARRIERS[person.carrier])

    def browse(self, person: Person, at: datetime, *, on_mobile_data: bool | None = None) -> tuple[Device, str]:
        """The device and address a person acts from at `at`."""
        at_work = person.office_ip is not None and at.weekday() < 5 and 9 <= at.hour < 18
        if at_work and self.rng.random() < 0.8:
            return person.computer, person.office_ip
        device = person.phone if self.rng.random() < 0.6 else self.rng.choice(person.devices)
        if device.mobile and (on_mobile_data if on_mobile_data is not None else self.rng.random() < 0.4):
            return device, self.cgnat_ip(person)
        return device, person.home_ip

    def action(
        self,
        person: Person,
        kind: str,
        at: datetime,
        *,
        device: Device | None = None,
        ip: str | None = None,
        code_of: str | None = None,
        card: str | None = None,
        address: dict[str, str] | None = None,
        on_mobile_data: bool | None = None,
    ) -> None:
        if at > self.end:
            assert kind == "PURCHASE", "sign-ups are placed inside the timeline"
            return  # they have not bought yet
        chosen_device, chosen_ip = self.browse(person, at, on_mobile_data=on_mobile_data)
        device, ip = device or chosen_device, ip or chosen_ip
        purchase = kind == "PURCHASE"
        self._numbers["action"] += 1
        self.events.append(
            Event(
                seq=self._numbers["action"],
                at=at,
                type=kind,
                customer=person.external_id,
                key=f"{kind.lower()}-{person.external_id}-{self._numbers['action']}",
                name=person.name if kind == "SIGNUP" else None,
                email=person.email if kind == "SIGNUP" else None,
                code_of=code_of,
                device_id=device.id,
                ip=ip,
                user_agent=device.user_agent,
                payment_fingerprint=(card or person.card) if purchase else None,
                shipping_address=(address or person.address) if purchase else None,
                amount=self.rng.randint(1500, 25000) if purchase else None,
            )
        )

    def join(self, person: Person, at: datetime, *, purchase: float = 0.5, purchase_within_hours: float = 72, **context) -> None:
        """A referrer's own history, once: a SIGNUP, often a purchase soon after, sometimes another later."""
        if person.external_id not in self._code_holder_set:
            self._code_holder_set.add(person.external_id)
            self.code_holders.append(person.external_id)
        if person.external_id in self._signed_up:
            return
        self._signed_up.add(person.external_id)
        self.action(person, "SIGNUP", at, **context)
        if self.rng.random() < purchase:
            self.action(person, "PURCHASE", at + timedelta(minutes=self.rng.uniform(5, purchase_within_hours * 60)), **context)
        if self.rng.random() < 0.1:
            self.action(person, "PURCHASE", self.moment(at + timedelta(days=1), self.end))

    def referred(
        self,
        referee: Person,
        referrer: Person,
        at: datetime,
        label: Label,
        *,
        purchase: float = 0.65,
        signup: dict | None = None,
        buy: dict | None = None,
        purchase_after: timedelta | None = None,
    ) -> None:
        """The referee signs up with the referrer's code and usually buys."""
        assert referee.external_id not in self.labels
        self.labels[referee.external_id] = label
        self._signed_up.add(referee.external_id)
        self.action(referee, "SIGNUP", at, code_of=referrer.external_id, **(signup or {}))
        if self.rng.random() < purchase:
            after = purchase_after or timedelta(minutes=self.rng.randint(3, 4 * 24 * 60))
            self.action(referee, "PURCHASE", at + after, **(buy or {}))

    def moment(self, low: datetime, high: datetime, *, daytime: bool = True) -> datetime:
        """A random time between low and high, most of them in waking hours (UTC, for simplicity)."""
        high = max(high, low + timedelta(minutes=1))
        for _ in range(20):
            at = low + timedelta(seconds=self.rng.uniform(0, (high - low).total_seconds()))
            if not daytime or 7 <= at.hour < 23:
                return at
        return at

    def referral_time(self, *, earliest_days: float = 2, room: timedelta = timedelta(hours=1)) -> datetime:
        """When a referral happens; `room` is kept free before the end for what follows it."""
        return self.moment(self.start + timedelta(days=earliest_days), self.end - room)

    def referral_times(self, count: int) -> list[datetime]:
        return sorted(self.referral_time() for _ in range(count))

    def before(self, at: datetime, *, max_days: float = 20) -> datetime:
        return self.moment(max(self.start, at - timedelta(days=max_days)), at - timedelta(hours=2))

    # -- legitimate referrals -----------------------------------------------------------------

    def friends(self, count: int) -> None:
        made = 0
        while made < count:
            referrer = self.person()
            times = self.referral_times(min(count - made, self.rng.choice((1, 1, 1, 2, 2, 3))))
            self.join(referrer, self.before(times[0]))
            for at in times:
                self.referred(self.person(), referrer, at, Label("friends", "friends"))
                made += 1

    def households(self, count: int) -> None:
        """Spouses and flatmates: one home address and IP, their own phones, browsers, cards, mailboxes
        and first names; most share a surname."""
        for _ in range(count):
            referrer = self.person()
            taken = {d.user_agent for d in referrer.devices}
            phone_uas = [(ua, w) for ua, w in PHONE_UAS if ua not in taken]
            desktop_uas = [(ua, w) for ua, w in DESKTOP_UAS if ua not in taken]
            devices = [self.device(mobile=True, user_agent=self._weighted(phone_uas))]
            if self.rng.random() < 0.5:
                devices.append(self.device(mobile=False, user_agent=self._weighted(desktop_uas)))
            same_name = self.rng.random() < 0.7
            referee = self.person(
                first=self.rng.choice([f for f in FIRST_NAMES if f != referrer.first]),
                last=referrer.last if same_name else None,
                home_ip=referrer.home_ip,
                carrier=referrer.carrier,
                address=self.rewritten(referrer.address),
                devices=devices,
            )
            at = self.referral_time()
            self.join(referrer, self.before(at), on_mobile_data=False)
            self.referred(referee, referrer, at, Label("household", "household"), signup={"on_mobile_data": False})

    def colleagues(self, count: int) -> None:
        """Friends at one company: company mailboxes, one office IP, the company's standard browser."""
        made = 0
        while made < count:
            company = self.rng.choice(self.companies)
            staff = [self.employee(company) for _ in range(self.rng.randint(3, 8))]
            referrer, referees = staff[0], staff[1:][: count - made]
            times = sorted(self.workday_time() for _ in referees)
            self.join(referrer, self.before(times[0]))
            for referee, at in zip(referees, times, strict=True):
                self.referred(referee, referrer, at, Label("colleagues", "colleagues"))
                made += 1

    def employee(self, company: tuple[str, str, str]) -> Person:
        domain, office_ip, standard = company
        laptop = self.device(mobile=False, user_agent=standard if self.rng.random() < 0.8 else None)
        return self.person(domain=domain, office_ip=office_ip, devices=[laptop, self.device(mobile=True)])

    def workday_time(self) -> datetime:
        for _ in range(50):
            at = self.referral_time()
            if at.weekday() < 5 and 9 <= at.hour < 18:
                return at
        return at

    def mobile_carrier(self, count: int) -> None:
        """Friends on one carrier, on their phones and mobile data: a few CGNAT addresses shared over days."""
        made = 0
        while made < count:
            carrier = self.rng.choice(list(CARRIERS))
            referrer = self.person(carrier=carrier, devices=[self.device(mobile=True)])
            times = self.referral_times(min(count - made, self.rng.choice((1, 2, 3))))
            self.join(referrer, self.before(times[0], max_days=6), on_mobile_data=True)
            for at in times:
                referee = self.person(carrier=carrier, devices=[self.device(mobile=True)])
                self.referred(
                    referee,
                    referrer,
                    at,
                    Label("mobile_carrier", "mobile_carrier"),
                    signup={"on_mobile_data": True},
                    buy={"on_mobile_data": True},
                )
                made += 1

    def popular_referrers(self, count: int) -> None:
        """Creators and community organisers: dozens of referrals each, spread over weeks."""
        made = 0
        while made < count:
            referrer = self.person()
            first = self.start + timedelta(days=self.rng.uniform(1, 5))
            self.join(referrer, first - timedelta(hours=self.rng.uniform(2, 24)))
            for _ in range(min(count - made, self.rng.randint(25, 45))):
                self.referred(
                    self.person(),
                    referrer,
                    self.moment(first, self.end - timedelta(hours=1)),
                    Label("popular_referrer", "popular_referrer"),
                )
                made += 1

    def organic(self, count: int) -> None:
        """Customers nobody referred, who share the same networks: offices, carriers' addresses."""
        for _ in range(count):
            person = self.employee(self.rng.choice(self.companies)) if self.rng.random() < 0.2 else self.person()
            at = self.moment(self.start, self.end - timedelta(hours=1))
            self.action(person, "SIGNUP", at)
            if self.rng.random() < 0.5:
                self.action(person, "PURCHASE", at + timedelta(minutes=self.rng.uniform(5, 5 * 24 * 60)))

    # -- fraud --------------------------------------------------------------------------------

    def aliases(self, count: int) -> None:
        """A customer referring themselves under a second account, six ways. Each way changes
        one thing only; everything else about the second account is new (another phone or a
        cleared browser, mobile data instead of the home network), the hardest case to see."""
        variants = (
            "gmail_alias",
            "similar_mailbox",
            "same_device",
            "same_card",
            "same_browser",
            "same_name",
            "referrer_device_later",
            "referrer_card_later",
        )
        for i in range(count):
            variant = variants[i % len(variants)]
            label = Label("alias", variant)
            me = self.person(domain="gmail.com" if variant in ("gmail_alias", "same_name") else None)
            alias = self.person(devices=[self.device(mobile=True)], carrier=me.carrier)  # a new device id
            if self.rng.random() < 0.5:
                alias.address = me.address
            browser = self.rng.choice(me.devices)
            elsewhere = {"on_mobile_data": True}
            signup, buy = elsewhere, elsewhere
            if variant == "gmail_alias":
                local = me.email.split("@")[0]
                plain = local.replace(".", "")
                alias.first, alias.last = me.first, me.last
                alias.email = self.rng.choice(
                    [
                        f"{local}+{self.rng.choice(['promo', 'ref', 'deals', 'shop', '2'])}@gmail.com",
                        ".".join(plain) + "@gmail.com",
                        f"{plain}@gmail.com",
                        f"{local}@googlemail.com",
                    ]
                )
            elif variant == "similar_mailbox":
                f, la = me.first.lower(), "".join(c for c in me.last.lower() if c.isalpha())
                domain = me.email.split("@")[1]
                me.email = self.unique(f"{f}.{la}", domain)
                other = self._weighted([(d, w) for d, w in FREE_MAIL if d != domain])
                alias.first, alias.last = me.first, me.last
                alias.email = self.unique(
                    self.rng.choice(
                        [
                            f"{f}{la}{self.rng.randint(1, 99)}",
                            f"{f}_{la}",
                            f"{f}.{la}.{self.rng.randint(80, 99)}",
                            f"{f}.{self.rng.choice(string.ascii_lowercase)}.{la}",
                        ]
                    ),
                    other,
                )
            elif variant == "same_device":
                signup, buy = {"device": browser, "ip": self.cgnat_ip(me)}, {"device": browser, "ip": self.cgnat_ip(me)}
            elif variant == "same_card":
                buy = {"card": me.card, **elsewhere}
            elif variant == "referrer_device_later":  # the referrer's own use of the device comes after
                browser = self.device(mobile=False)
                signup, buy = {"device": browser, "ip": self.cgnat_ip(me)}, {"device": browser, "ip": self.cgnat_ip(me)}
            elif variant == "referrer_card_later":  # the card is seen on the referrer only later
                buy = {"card": me.card, **elsewhere}
            elif variant == "same_browser":  # cookies cleared: a new device id in the same browser, at home
                alias.devices = [Device(alias.devices[0].id, browser.user_agent, browser.mobile)]
                signup = {"device": alias.devices[0], "ip": me.home_ip}
            else:  # same_name: the same full name at the same mailbox provider, an unrelated mailbox
                alias.first, alias.last = me.first, me.last
                alias.email = self.unique(
                    f"{self.rng.choice(['sunny', 'blue', 'happy', 'lucky', 'shop', 'coupon'])}{self._hex(4)}", "gmail.com"
                )
            late = variant in ("referrer_device_later", "referrer_card_later")
            at = self.referral_time(earliest_days=4, room=timedelta(hours=96 if late else 36))
            own_signup = self.before(at, max_days=10)
            if variant == "same_browser":
                at = own_signup + timedelta(hours=self.rng.uniform(0.5, 30))
            if late:  # the referrer signs up on another device and buys nothing before the alias does
                self.join(me, own_signup, purchase=0.0, device=me.phone, ip=me.home_ip)
            else:
                self.join(me, own_signup, purchase=1.0, purchase_within_hours=1, device=browser, ip=me.home_ip)
            bought_after = timedelta(minutes=self.rng.randint(5, 300))
            self.referred(
                alias,
                me,
                at,
                label,
                signup=signup,
                buy=buy,
                purchase=1.0 if variant in ("same_card", "referrer_card_later") else 0.8,
                purchase_after=bought_after,
            )
            if late:  # hours to two days after the alias bought, the referrer shows the device / the card themselves
                later = at + bought_after + timedelta(hours=self.rng.uniform(4, 48))
                self.action(
                    me,
                    "PURCHASE",
                    later,
                    device=browser,
                    ip=me.home_ip,
                    card=me.card if variant == "referrer_card_later" else None,
                )

    def device_farms(self, count: int) -> None:
        """A few phones cycling through many new accounts for one or several referrers, behind
        one connection or rotating residential proxies."""
        made, farm = 0, 0
        while made < count:
            farm += 1
            phones = [self.device(mobile=True, user_agent=UA_ANDROID_CHROME) for _ in range(self.rng.randint(1, 3))]
            owners = [self.person() for _ in range(self.rng.randint(1, 3))]
            one_ip = self.residential_ip() if farm % 2 else None
            size = min(count - made, self.rng.randint(10, 22))
            at = self.referral_time(earliest_days=4, room=timedelta(minutes=150 * size + 60))
            for owner in owners:
                self.join(owner, self.before(at, max_days=5))
            # A third of the farms start clean: the first three accounts each on a phone and an address
            # not seen before (nothing to match yet); those phones stay in the farm's rotation.
            clean_start = farm % 3 == 0 and size > 6  # a farm of three clean accounts would be nothing but clean
            variant = "_".join((_count(len(phones), "phone"), _count(len(owners), "referrer"), "one_ip" if one_ip else "proxies"))
            variant = "clean_start" if clean_start else variant
            first_phones = [self.device(mobile=True, user_agent=UA_ANDROID_CHROME) for _ in range(3)] if clean_start else []
            for i in range(size):
                at += timedelta(minutes=self.rng.randint(8, 150))
                fresh = clean_start and i < 3
                phone = first_phones[i] if fresh else self.rng.choice(phones + first_phones)
                account = self.person(devices=[phone], home_ip=one_ip or self.residential_ip())
                ip = self.residential_ip() if fresh else one_ip or self.residential_ip()
                self.referred(
                    account,
                    self.rng.choice(owners),
                    at,
                    Label("device_farm", variant),
                    purchase=0.6,
                    signup={"device": phone, "ip": ip},
                    buy={"device": phone, "ip": ip},
                    purchase_after=timedelta(minutes=self.rng.randint(2, 30)),
                )
                made += 1

    def rings(self, count: int) -> None:
        """Two to four accomplices referring each other round in a circle, each with their own
        everything: codes handed out first (a waitlist, a promotion), then the sign-ups."""
        made = 0
        while made < count:
            size = min(self.rng.choice((2, 3, 4)), max(2, count - made))
            members = [self.person() for _ in range(size)]
            for member in members:
                self._code_holder_set.add(member.external_id)
                self.code_holders.append(member.external_id)
            slow = self.rng.random() < 0.5  # links a day apart: the ring closes days after the first was paid
            at = self.referral_time(earliest_days=3, room=timedelta(hours=36 * size + 1))
            for i in range(size):
                at += timedelta(hours=self.rng.uniform(12, 24) if slow else self.rng.uniform(0.5, 36))
                variant = f"{'slow_' if slow else ''}ring_of_{size}"
                self.referred(
                    members[(i + 1) % size],
                    members[i],
                    at,
                    Label("ring", variant),
                    purchase=0.9,
                    purchase_after=timedelta(minutes=self.rng.randint(3, 180)) if slow else None,
                )
                made += 1

    def disposable_mailboxes(self, count: int) -> None:
        made = 0
        while made < count:
            referrer = self.person()
            referees = min(count - made, self.rng.randint(1, 4))
            at = self.referral_time(earliest_days=3, room=timedelta(hours=48 * referees + 1))
            self.join(referrer, self.before(at))
            for _ in range(referees):
                at += timedelta(hours=self.rng.uniform(0.2, 48))
                subdomain = self.rng.random() < 0.25
                domain = (
                    f"{self._hex(4)}.{self.rng.choice(DISPOSABLE_PARENTS_FOR_SUBDOMAINS)}"
                    if subdomain
                    else self.rng.choice(DISPOSABLE_DOMAINS)
                )
                referee = self.person()
                referee.email = self.mailbox(referee.first, referee.last, domain)
                self.referred(referee, referrer, at, Label("disposable_email", "subdomain" if subdomain else "domain"))
                made += 1

    def velocity_bursts(self, count: int) -> None:
        """A referrer's link posted to a deal forum or run by a bot: 15 to 40 sign-ups within the
        hour, each from its own device and address."""
        made, burst = 0, 0
        while made < count:
            burst += 1
            left = count - made
            size = left if left <= 40 and left - 15 < 15 else self.rng.randint(15, min(40, left - 15))
            referrer = self.person()
            # Half the bursts are spread over 1.5 to 2.5 hours: fewer than 10 in any one hour.
            spread = burst % 2 == 0
            minutes = self.rng.uniform(90, 150) if spread else 55
            start = self.referral_time(earliest_days=3, room=timedelta(hours=3))
            self.join(referrer, self.before(start))
            for offset in sorted(self.rng.uniform(0, minutes) for _ in range(size)):
                self.referred(
                    self.person(),
                    referrer,
                    start + timedelta(minutes=offset),
                    Label("velocity_burst", f"spread_burst_of_{size}" if spread else f"burst_of_{size}"),
                    purchase=0.5,
                    purchase_after=timedelta(minutes=self.rng.randint(2, 40)),
                )
                made += 1

    def dataset(self) -> Dataset:
        events = sorted(self.events, key=lambda e: (e.at, e.seq))
        return Dataset(code_holders=list(self.code_holders), events=events, labels=dict(self.labels))


def _count(n: int, noun: str) -> str:
    return f"{n}_{noun}" + ("s" if n > 1 else "")


def generate(
    *, seed: int = 7, legit: int = 1000, fraud_per_kind: int = 50, organic: int | None = None, now: datetime | None = None
) -> Dataset:
    """`legit` legitimate referrals in the mix of LEGIT_KINDS, `fraud_per_kind` of each fraud kind,
    and `organic` customers who came without a referral (default: half of `legit`)."""
    g = Generator(seed, now or datetime.now(UTC))
    shares = {"household": 0.12, "colleagues": 0.12, "mobile_carrier": 0.14, "popular_referrer": 0.09}
    counts = {kind: round(legit * share) for kind, share in shares.items()}
    counts["friends"] = legit - sum(counts.values())
    g.friends(counts["friends"])
    g.households(counts["household"])
    g.colleagues(counts["colleagues"])
    g.mobile_carrier(counts["mobile_carrier"])
    g.popular_referrers(counts["popular_referrer"])
    g.organic(legit // 2 if organic is None else organic)
    g.aliases(fraud_per_kind)
    g.device_farms(fraud_per_kind)
    g.rings(fraud_per_kind)
    g.disposable_mailboxes(fraud_per_kind)
    g.velocity_bursts(fraud_per_kind)
    return g.dataset()


# -- running it through the service -----------------------------------------------------------


@dataclass
class Run:
    merchant_id: uuid.UUID
    program_id: uuid.UUID
    actions: int
    seconds: float
    refused: Counter = field(default_factory=Counter)  # DomainError codes (nothing recorded)
    seconds_by_step: dict[str, list[float]] = field(default_factory=dict)
    # (wall clock, shop clock) whenever the run moved on: maps a stored timestamp (wall clock) to
    # the simulated moment it happened at, for "hours from purchase to spendable"
    clock: list[tuple[datetime, datetime]] = field(default_factory=list)
    jobs_run: int = 0

    @property
    def ms_per_action(self) -> float:
        return self.seconds * 1000 / max(self.actions, 1)

    def shop_time(self, wall: datetime) -> datetime | None:
        """The simulated moment at which something stored at `wall` (utcnow) happened."""
        index = bisect.bisect_right(self.clock, (wall, datetime.max.replace(tzinfo=UTC))) - 1
        return self.clock[index][1] if index >= 0 else None


async def run(
    factory: async_sessionmaker[AsyncSession], dataset: Dataset, *, policy: Sequence[policies.SignalChange] = ()
) -> Run:
    """A merchant with an active program paying the referrer $10 credit per referee purchase and
    giving the referee a 10 % first-order coupon at signup, codes for every referrer, then every
    event through `record_action`, one transaction each, as the shop's clock moves on: the
    scheduled work (releases) runs every TICK of shop time, and the jobs an action enqueued
    (re-screening) right after it commits, as the worker would. `policy`: changes to the default
    fraud policy, set on the program first."""
    async with factory() as session:
        merchant = await merchants.create_merchant(session, name="Synthetic shop")
        program = await programs.create_program(
            session,
            merchant_id=merchant.id,
            changes=programs.ProgramChanges(name="Refer a friend", status=ProgramStatus.ACTIVE, code_style=CodeStyle.RANDOM),
        )
        await rules.create_rule(
            session,
            merchant_id=merchant.id,
            program_id=program.id,
            definition=RuleDefinition(
                "Give $10", "PURCHASE", Recipient.REFERRER, RewardKind.CREDIT, RuleSpec(amount=1000, currency="USD")
            ),
        )
        await rules.create_rule(
            session,
            merchant_id=merchant.id,
            program_id=program.id,
            definition=RuleDefinition(
                "10 % off the first order", "SIGNUP", Recipient.REFEREE, RewardKind.DISCOUNT, RuleSpec(percent_bps=1000)
            ),
        )
        if policy:
            await policies.set_policy(
                session,
                merchant_id=merchant.id,
                program_id=program.id,
                change=policies.PolicyChange(signals=tuple(policy)),
                actor=audit.SYSTEM,
            )
        code_of = {}
        for customer in dataset.code_holders:
            issued = await codes.issue_referral_code(
                session, merchant_id=merchant.id, program_id=program.id, customer_external_id=customer
            )
            code_of[customer] = issued.code
        await session.commit()
        merchant_id, program_id = merchant.id, program.id

    registry.load_jobs()
    refused: Counter = Counter()
    by_step: dict[str, list[float]] = defaultdict(list)
    referees = set(dataset.labels)
    clock: list[tuple[datetime, datetime]] = []
    jobs_run = 0
    last_tick = None
    started = time.perf_counter()
    for event in dataset.events:
        if last_tick is None or event.at - last_tick >= TICK:
            last_tick = event.at
            clock.append((utcnow(), event.at))
            await _scheduled_work(factory, now=event.at)
        clock.append((utcnow(), event.at))
        step = f"{'referee' if event.customer in referees else 'referrer'} {event.type}"
        began = time.perf_counter()
        data = actions.ActionInput(
            type=event.type,
            customer_external_id=event.customer,
            idempotency_key=event.key,
            amount=event.amount,
            currency="USD" if event.amount else None,
            occurred_at=event.at,
            order_id=event.key if event.type == "PURCHASE" else None,
            referral_code=code_of[event.code_of] if event.code_of else None,
            customer_email=event.email,
            customer_name=event.name,
            device_id=event.device_id,
            ip=event.ip,
            user_agent=event.user_agent,
            payment_fingerprint=event.payment_fingerprint,
            shipping_address=event.shipping_address,
        )
        async with factory() as session:  # as app.schema.transactions.mutate: commit, or roll back a user error
            try:
                await actions.record_action(session, merchant_id=merchant_id, data=data)
                enqueued = [job.id for job in outbox.pending_jobs(session) if job.actor.startswith("fraud.")]
                await session.commit()
            except DomainError as error:
                await session.rollback()
                refused[error.code.value] += 1
                enqueued = []
        by_step[step].append(time.perf_counter() - began)
        began = time.perf_counter()
        for job_id in enqueued:  # the worker picks them up right away
            await outbox.run_job(factory, str(job_id))
            jobs_run += 1
        if enqueued:
            by_step["worker: re-screening job"].append(time.perf_counter() - began)
    clock.append((utcnow(), dataset.events[-1].at if dataset.events else utcnow()))
    return Run(
        merchant_id, program_id, len(dataset.events), time.perf_counter() - started, refused, dict(by_step), clock, jobs_run
    )


TICK = timedelta(minutes=15)  # how often the scheduled work runs, in shop time


async def _scheduled_work(factory: async_sessionmaker[AsyncSession], *, now: datetime) -> None:
    """What the worker's schedule does, at the shop's `now`: referrals whose quiet period ended
    are screened for clearance, rewards whose hold ended are released."""
    while True:
        async with factory() as session:
            screened = await clearance.clear_due(session, now=now)
            await session.commit()
        if screened < 200:
            break
    while True:
        async with factory() as session:
            released = await lifecycle.release_due_rewards(session, now=now)
            await session.commit()
        if released < 500:
            return


# -- measuring --------------------------------------------------------------------------------


@dataclass
class Row:
    kind: str
    fraud: bool
    count: int = 0
    flagged: int = 0  # rejected, in review, or any decision REVIEW/BLOCK
    blocked: int = 0  # rejected
    reviewed: int = 0  # flagged, not rejected: a person has to look
    leaked: int = 0  # flagged, and a referrer reward was spendable before the first flag
    leaked_amount: int = 0  # minor units of those referrer rewards
    referee_leaked: int = 0  # flagged, and a referee reward (the signup coupon) was spendable before the flag
    spendable_at_end: int = 0  # flagged, and a referrer reward is still AVAILABLE at the end
    held_at_end: int = 0  # legitimate, and a referrer reward is still HELD at the end
    hours_to_spendable: list[float] = field(default_factory=list)  # legitimate: referee purchase -> referrer reward spendable
    signals: Counter = field(default_factory=Counter)  # fired signals on this kind's flagged referrals

    @property
    def rate(self) -> float:
        """Recall for a fraud kind, false-positive rate for a legitimate one."""
        return self.flagged / self.count if self.count else 0.0

    @property
    def leak_rate(self) -> float:
        """Of the flagged fraud, the share where a referrer reward was spendable before the flag."""
        return self.leaked / self.flagged if self.flagged else 0.0

    @property
    def blocked_rate(self) -> float:
        return self.blocked / self.count if self.count else 0.0

    @property
    def friction(self) -> float:
        """Of legitimate referrals, the share sent to a person (review)."""
        return self.reviewed / self.count if self.count else 0.0

    @property
    def median_hours(self) -> float | None:
        return statistics.median(self.hours_to_spendable) if self.hours_to_spendable else None


@dataclass
class Quality:
    kinds: dict[str, Row]
    variants: dict[str, Row]
    attributed: dict[str, Counter]  # fraud kind -> Counter(fraud=, legit=) of flagged referrals its signals name
    missing: list[str]  # labelled referees without a referral (the generator or attribution is wrong)
    run: Run

    def recall(self, kind: str) -> float:
        return self.kinds[kind].rate

    def precision(self, kind: str) -> float:
        counts = self.attributed[kind]
        total = counts["fraud"] + counts["legit"]
        return counts["fraud"] / total if total else 1.0

    def _rows(self, fraud: bool) -> list[Row]:
        return [r for r in self.kinds.values() if r.fraud is fraud]

    def _total(self, fraud: bool) -> tuple[int, int]:
        rows = self._rows(fraud)
        return sum(r.count for r in rows), sum(r.flagged for r in rows)

    @property
    def false_positive_rate(self) -> float:
        """Legitimate referrals flagged at all (blocked or sent to review)."""
        count, flagged = self._total(False)
        return flagged / count if count else 0.0

    @property
    def blocked_legit_rate(self) -> float:
        rows = self._rows(False)
        count = sum(r.count for r in rows)
        return sum(r.blocked for r in rows) / count if count else 0.0

    @property
    def friction(self) -> float:
        rows = self._rows(False)
        count = sum(r.count for r in rows)
        return sum(r.reviewed for r in rows) / count if count else 0.0

    @property
    def overall_precision(self) -> float:
        _, fraud_flagged = self._total(True)
        _, legit_flagged = self._total(False)
        return fraud_flagged / (fraud_flagged + legit_flagged) if fraud_flagged + legit_flagged else 1.0

    @property
    def overall_recall(self) -> float:
        count, flagged = self._total(True)
        return flagged / count if count else 0.0

    @property
    def overall_leak_rate(self) -> float:
        rows = self._rows(True)
        flagged = sum(r.flagged for r in rows)
        return sum(r.leaked for r in rows) / flagged if flagged else 0.0

    def table(self, *, variants: bool = False) -> str:
        head = (
            "| kind | referrals | flagged | blocked | recall / FP rate | precision (attributed) | referrer leak rate | "
            "leaked $ | referee coupons leaked | still spendable | friction (review) | median h to spendable | "
            "held at end | top signals |"
        )
        lines = [head, "|" + "---|" * (head.count("|") - 1)]
        for row in sorted(self.kinds.values(), key=lambda r: (not r.fraud, r.kind)):
            lines.append(self._line(row, f"{self.precision(row.kind):.3f}" if row.fraud else "—"))
        fraud_count, fraud_flagged = self._total(True)
        legit_count, legit_flagged = self._total(False)
        fraud_rows, legit_rows = self._rows(True), self._rows(False)
        hours = [h for r in legit_rows for h in r.hours_to_spendable]
        lines.append(
            f"| **all fraud** | {fraud_count} | {fraud_flagged} | {sum(r.blocked for r in fraud_rows)} | "
            f"recall {self.overall_recall:.3f} | {self.overall_precision:.3f} | {self.overall_leak_rate:.3f} | "
            f"{sum(r.leaked_amount for r in fraud_rows) / 100:.2f} | {sum(r.referee_leaked for r in fraud_rows)} | "
            f"{sum(r.spendable_at_end for r in fraud_rows)} | | | | |"
        )
        lines.append(
            f"| **all legitimate** | {legit_count} | {legit_flagged} | {sum(r.blocked for r in legit_rows)} | "
            f"FP rate {self.false_positive_rate:.4f} (blocked {self.blocked_legit_rate:.4f}) | | | | | | "
            f"{self.friction:.4f} | {_hours(statistics.median(hours) if hours else None)} | "
            f"{sum(r.held_at_end for r in legit_rows)} | |"
        )
        if variants:
            lines += ["", head.replace("| kind |", "| variant |"), lines[1]]
            for row in sorted(self.variants.values(), key=lambda r: (not r.fraud, r.kind)):
                lines.append(self._line(row, ""))
        lines.append("")
        lines.append(
            "Flagged: rejected, in an open review, or any decision REVIEW/BLOCK. Precision (attributed): of the "
            "flagged referrals on which a signal of the kind fired (SIGNAL_KINDS), the share that is fraud."
        )
        lines.append(
            "Referrer leak rate: of the flagged fraud, the share where a referrer reward was spendable (AVAILABLE, "
            "or spent since) before the first REVIEW/BLOCK; leaked $: those rewards' amount. Referee coupons "
            "leaked: flagged referrals whose signup coupon was usable before the flag (released at signup by "
            "policy, counted apart). Still spendable: flagged, a referrer reward AVAILABLE at the end."
        )
        lines.append(
            "Friction: legitimate referrals sent to review. Median h to spendable: shop hours from the referee's "
            "purchase to the referrer's reward becoming AVAILABLE; held at end: legitimate referrer rewards still HELD "
            "when the timeline ends."
        )
        lines.append(
            f"{self.run.actions} recordAction calls (with the worker's jobs and schedule) in {self.run.seconds:.1f} s: "
            f"{self.run.ms_per_action:.1f} ms each; {self.run.jobs_run} re-screening jobs run"
            + (f"; refused: {dict(self.run.refused)}" if self.run.refused else "")
        )
        steps = sorted(self.run.seconds_by_step.items())
        lines.append(
            "median ms: " + ", ".join(f"{step} {statistics.median(times) * 1000:.1f} ({len(times)})" for step, times in steps)
        )
        return "\n".join(lines)

    @staticmethod
    def _line(row: Row, precision: str) -> str:
        top = ", ".join(f"{name} {n}" for name, n in row.signals.most_common(4))
        if row.fraud:
            return (
                f"| {row.kind} | {row.count} | {row.flagged} | {row.blocked} | {row.rate:.3f} | {precision} | "
                f"{row.leak_rate:.3f} | {row.leaked_amount / 100:.2f} | {row.referee_leaked} | {row.spendable_at_end} | "
                f"| | | {top} |"
            )
        return (
            f"| {row.kind} | {row.count} | {row.flagged} | {row.blocked} | {row.rate:.4f} | {precision} | | | | | "
            f"{row.friction:.4f} | {_hours(row.median_hours)} | {row.held_at_end} | {top} |"
        )


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class _RewardSeen:
    recipient: str
    amount: int
    status: str
    available_at: datetime | None
    purchased_at: datetime  # the triggering action's occurredAt (shop time)


async def measure(factory: async_sessionmaker[AsyncSession], dataset: Dataset, outcome: Run) -> Quality:
    """Score the engine: a referral is flagged when it was rejected, has an open review, or any
    of its decisions said REVIEW or BLOCK; it leaked when one of its rewards became spendable
    before the first of those decisions (stored times, one clock: the run is sequential)."""
    async with factory() as session:
        referrals = (
            await session.execute(
                select(Referral.id, Referral.status, Customer.external_id)
                .join(Customer, Customer.id == Referral.referee_id)
                .where(Referral.program_id == outcome.program_id)
            )
        ).all()
        decisions = (
            await session.execute(
                select(
                    FraudDecision.referral_id, FraudDecision.outcome, FraudDecision.observations, FraudDecision.created_at
                ).where(FraudDecision.program_id == outcome.program_id)
            )
        ).all()
        open_reviews = set(
            (
                await session.scalars(
                    select(FraudReview.referral_id).where(
                        FraudReview.program_id == outcome.program_id, FraudReview.status == ReviewStatus.OPEN.value
                    )
                )
            ).all()
        )
        rewards = (
            await session.execute(
                select(
                    Reward.referral_id, Reward.recipient, Reward.amount, Reward.status, Reward.available_at, Action.occurred_at
                )
                .join(Action, Action.id == Reward.trigger_action_id)
                .where(Reward.program_id == outcome.program_id)
            )
        ).all()

    strict: dict[uuid.UUID, bool] = defaultdict(bool)
    flagged_at: dict[uuid.UUID, datetime] = {}
    reviewed: set[uuid.UUID] = set()
    fired: dict[uuid.UUID, set[str]] = defaultdict(set)
    for referral_id, decision_outcome, observations, created_at in decisions:
        if decision_outcome != Outcome.ALLOW:
            strict[referral_id] = True
            fired[referral_id] |= {o["signal"] for o in observations if o.get("fired")}
            flagged_at[referral_id] = min(created_at, flagged_at.get(referral_id, created_at))
        if decision_outcome == Outcome.REVIEW:
            reviewed.add(referral_id)
    rewards_of: dict[uuid.UUID, list[_RewardSeen]] = defaultdict(list)
    for referral_id, recipient, amount, status, available_at, occurred_at in rewards:
        rewards_of[referral_id].append(_RewardSeen(recipient.value, amount, status.value, available_at, occurred_at))
    kinds = {k: Row(k, k in FRAUD_KINDS) for k in (*FRAUD_KINDS, *LEGIT_KINDS)}
    variants: dict[str, Row] = {}
    attributed = {k: Counter() for k in FRAUD_KINDS}
    found = set()
    for referral_id, status, referee in referrals:
        label = dataset.labels.get(referee)
        if label is None:
            continue
        found.add(referee)
        rejected = status == ReferralStatus.REJECTED
        flagged = rejected or referral_id in open_reviews or strict[referral_id]
        first_flag = flagged_at.get(referral_id)
        mine = rewards_of[referral_id]

        def spendable_before_flag(recipient: str, mine=mine, first_flag=first_flag) -> list[_RewardSeen]:
            return [
                r
                for r in mine
                if r.recipient == recipient and r.available_at is not None and (first_flag is None or r.available_at < first_flag)
            ]

        leaked = spendable_before_flag("REFERRER") if flagged else []
        key = f"{label.kind}/{label.variant}"
        variant = variants.setdefault(key, Row(key, label.fraud))
        for row in (kinds[label.kind], variant):
            row.count += 1
            row.flagged += flagged
            row.blocked += rejected
            row.reviewed += flagged and not rejected
            if flagged:
                row.signals.update(fired[referral_id])
                row.leaked += bool(leaked)
                row.leaked_amount += sum(r.amount for r in leaked)
                row.referee_leaked += bool(spendable_before_flag("REFEREE"))
                row.spendable_at_end += any(r.recipient == "REFERRER" and r.status == "AVAILABLE" for r in mine)
            if not label.fraud:
                for reward in mine:
                    if reward.recipient != "REFERRER":
                        continue
                    if reward.status == "HELD":
                        row.held_at_end += 1
                    elif reward.available_at is not None:
                        spendable = outcome.shop_time(reward.available_at)
                        if spendable is not None:
                            row.hours_to_spendable.append(max(0.0, (spendable - reward.purchased_at).total_seconds() / 3600))
        if flagged:
            for kind in {SIGNAL_KINDS[s] for s in fired[referral_id] if s in SIGNAL_KINDS}:
                attributed[kind]["fraud" if label.fraud else "legit"] += 1
    missing = sorted(set(dataset.labels) - found)
    return Quality(kinds, variants, attributed, missing, outcome)
