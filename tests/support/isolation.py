"""Tenant isolation cases, generated from the served schema, and the tenants they aim across.

`build_tenancy` makes one tree of tenants, each holding numbers in every state and
marked with a secret (its label + "-secret") in every text it owns. `cases` reads the
schema: every argument of every Query and Mutation field, and of every nested field
that takes arguments, is filled from FILLERS, keyed by (type, argument name). An
argument that names an object (an id, a number, a subscription, a filter value) is a
*target*: each case aims one target at other tenants' objects and at a made-up one.
An argument the table cannot fill is listed by `unfilled`, so a new field fails a
test instead of going untested.
"""

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import graphql
import sqlalchemy as sa

from domain import access, ids, operators, porting, series, tokens, webhooks
from domain.details import NumberDetails
from domain.pagination import encode_cursor
from models import (
    Base,
    Operator,
    Organization,
    OrganizationKind,
    PortOrder,
    Role,
    Token,
    WebhookDelivery,
)
from models.database import Database
from schema.build import build_schema
from schema.numbers import TYPE_NAME as NUMBER_TYPE
from settings import Settings
from tests.support.api import Api, gid
from tests.support.world import World, allow_intake

# label: (kind, parent label)
# Every viewer has a child, so allocation has somewhere to go.
TREE = {
    "P1": (OrganizationKind.PARTNER, "root"),
    "C1": (OrganizationKind.CUSTOMER, "P1"),
    "D1": (OrganizationKind.DEPARTMENT, "C1"),
    "E1": (OrganizationKind.DEPARTMENT, "D1"),
    "C2": (OrganizationKind.CUSTOMER, "P1"),
    "D2": (OrganizationKind.DEPARTMENT, "C2"),
    "P2": (OrganizationKind.PARTNER, "root"),
    "C3": (OrganizationKind.CUSTOMER, "P2"),
}
# Siblings (C1, C2), a partner above them (P1), a department below one of them (D1).
VIEWERS = ("C1", "C2", "P1", "D1")
# What each tenant's numbers are left as, one number each.
# "porting": PORTING_IN, in a DRAFT port-in order of the tenant's own (`Tenant.port_order`).
STATES = ("available", "reserved", "locked", "assigned", "deleted", "held", "porting")
# Number filter fields that name a tenant's own text, and the text each tenant uses.
TEXTS = {
    "sku": "{} sku",
    "vendor": "{} vendor",
    "routing": "{} routing",
    "visibleToDomain": "{}.example",
    "tag": "{} tag",
    "notes": "{} notes",
}
SERIES_PREFIX = "+6561"


def made_up_number(index: int) -> str:
    """A valid number no tenant holds (tenants hold +6561…)."""
    return f"+656999{index:04d}"


@dataclass
class Tenant:
    label: str
    org: Organization
    tokens: dict[Role, str]
    numbers: dict[str, str]
    # The subscription of the ASSIGNED number, and the one whose expiry holds "held".
    subscriptions: tuple[uuid.UUID, uuid.UUID]
    # Each token's place in the list of tokens: (created_at, uuid), as its cursor holds it.
    token_keys: dict[Role, tuple[str, str]] = field(default_factory=dict)
    # The tenant's webhook endpoint and one delivery of it: (id, global id) each.
    endpoint: tuple[int, str] = (0, "")
    delivery: tuple[int, str] = (0, "")
    # The tenant's port order: its id, and its row id (as its cursor holds it).
    port_order: str = ""
    port_order_row: int = 0

    @property
    def secret(self) -> str:
        return f"{self.label}-secret"

    @property
    def gid(self) -> str:
        return gid(self.org)

    @property
    def admin(self) -> str:
        return self.tokens[Role.ADMIN]

    def text(self, name: str) -> str:
        # A vendor names an operator its reseller keeps, which the reseller's other
        # customers see (DESIGN, "Operators"): a shared name, not the tenant's secret.
        return TEXTS[name].format(self.label if name == "vendor" else self.secret)

    def secrets(self) -> list[str]:
        """Every string that would show this tenant's data if an answer held it."""
        return [
            self.secret,
            self.gid,
            str(self.org.uuid),
            *(str(s) for s in self.subscriptions),
            *self.numbers.values(),
            *(number_gid(e164) for e164 in self.numbers.values()),
            *self.token_gids(),
            self.endpoint[1],
            self.delivery[1],
            self.port_order,
        ]

    def token_gids(self) -> list[str]:
        return [token_gid(key) for _, key in self.token_keys.values()]


def number_gid(e164: str) -> str:
    return ids.encode(NUMBER_TYPE, e164)


def token_gid(key: str) -> str:
    return ids.encode(tokens.TYPE_NAME, key)


@dataclass(frozen=True)
class OperatorRef:
    gid: str
    name_key: str
    id: int
    keeper_path: str


@dataclass
class Tenancy:
    api: Api
    tenants: dict[str, Tenant]
    series_gid: str
    # Last event id of each number, for history cursors.
    last_event: dict[str, int] = field(default_factory=dict)
    # The operator of each tenant's vendor.
    operators: dict[str, "OperatorRef"] = field(default_factory=dict)

    def operators_hidden_from(self, label: str) -> list["OperatorRef"]:
        """Operators kept neither in the viewer's subtree nor on its path to the root."""
        path = self.tenants[label].org.path
        return [
            o
            for o in self.operators.values()
            if not (path.startswith(o.keeper_path) or o.keeper_path.startswith(path))
        ]

    def within(self, label: str) -> list[Tenant]:
        """The tenants a token of `label` may see: its organization's subtree."""
        top = self.tenants[label].org.path
        return [t for t in self.tenants.values() if t.org.path.startswith(top)]

    def child(self, label: str) -> "Tenant":
        parent = self.tenants[label].org.id
        return next(t for t in self.tenants.values() if t.org.parent_id == parent)

    def foreign(self, label: str) -> list[Tenant]:
        top = self.tenants[label].org.path
        return [t for t in self.tenants.values() if not t.org.path.startswith(top)]

    def forbidden(self, label: str) -> list[str]:
        return sorted({s for t in self.foreign(label) for s in t.secrets()}, key=len, reverse=True)

    def visible_numbers(self, label: str) -> set[str]:
        return {e164 for t in self.within(label) for e164 in t.numbers.values()}

    @property
    def later(self) -> datetime:
        return self.api.clock.now() + timedelta(days=60)


# ---- the tree ----


async def build_tenancy(api: Api) -> Tenancy:
    """Every tenant's numbers, put into each state by the tenant's own admin token."""
    world = World(api.db, api.clock, await api.root())
    orgs = {"root": world.root}
    for label, (kind, parent) in TREE.items():
        emails = {"billing_email": f"billing@{label}-secret.example"}
        orgs[label] = await world.org(f"{label}-secret", kind, orgs[parent], **emails)
    # Every tenant brings its own numbers in, and may be probed through intake.
    await allow_intake(api.db, *(org for label, org in orgs.items() if label != "root"))
    tokens = {
        label: {role: await api.token_for(org, role, f"{label}-secret {role}") for role in Role}
        for label, org in orgs.items()
    }
    async with api.db.write() as session:
        root_viewer = await access.authenticate(session, tokens["root"][Role.ADMIN])
        assert root_viewer is not None
        row = await series.create(
            session, root_viewer, api.clock, name="Singapore 61", prefix=SERIES_PREFIX, country="SG"
        )
    tenancy = Tenancy(api, {}, ids.encode(series.TYPE_NAME, row.uuid))
    for index, (label, org) in enumerate(orgs.items()):
        e164s = {state: f"{SERIES_PREFIX}{index:02d}00{k:02d}" for k, state in enumerate(STATES)}
        tenancy.tenants[label] = Tenant(
            label, org, tokens[label], e164s, (uuid.uuid4(), uuid.uuid4())
        )
    async with api.db.read() as session:
        found = (await session.execute(sa.select(Token.name, Token.created_at, Token.uuid))).all()
    by_name = {name: (created.isoformat(), str(key)) for name, created, key in found}
    for label, tenant in tenancy.tenants.items():
        tenant.token_keys = {role: by_name[f"{label}-secret {role}"] for role in Role}
    for tenant in tenancy.tenants.values():
        await _endpoint(world, tenant)
    for tenant in tenancy.tenants.values():
        children = [t for t in tenancy.tenants.values() if t.org.parent_id == tenant.org.id]
        await _stock(world, tenancy, tenant, children[0] if children else tenant)
    async with api.db.read() as session:
        for tenant in tenancy.tenants.values():
            delivery = await session.scalar(
                sa.select(WebhookDelivery)
                .where(WebhookDelivery.endpoint_id == tenant.endpoint[0])
                .order_by(WebhookDelivery.id.desc())
                .limit(1)
            )
            assert delivery is not None
            key = ids.encode(webhooks.DELIVERY_TYPE, delivery.uuid)
            tenant.delivery = (delivery.id, key)
    async with api.db.read() as session:
        rows = await session.execute(
            sa.text(
                "SELECT n.e164, max(e.id) FROM number_events e JOIN numbers n"
                " ON n.id = e.number_id GROUP BY n.e164"
            )
        )
        tenancy.last_event = {e164: last for e164, last in rows}
        vendors = {tenant.text("vendor"): label for label, tenant in tenancy.tenants.items()}
        named = await session.execute(
            sa.select(
                Operator.name, Operator.uuid, Operator.name_key, Operator.id, Organization.path
            )
            .join(Organization, Organization.id == Operator.organization_id)
            .where(Operator.name.in_(vendors))
        )
        tenancy.operators = {
            vendors[name]: OperatorRef(ids.encode(operators.TYPE_NAME, key), name_key, row_id, path)
            for name, key, name_key, row_id, path in named
        }
    return tenancy


ENDPOINT_RULES = webhooks.WebhookRules.from_settings(
    Settings(_env_file=None, webhook_allow_private=True)
)


def endpoint_url(label: str) -> str:
    # A public address, so no DNS is asked; nothing is ever sent to it.
    return f"https://8.8.8.8/{label}-secret"


async def _endpoint(world: World, tenant: Tenant) -> None:
    """The tenant's own webhook endpoint, its URL marked with the tenant's secret."""
    async with world.db.write() as session:
        viewer = await access.authenticate(session, tenant.admin)
        assert viewer is not None
        row, _ = await webhooks.create(
            session,
            viewer,
            world.clock,
            ENDPOINT_RULES,
            organization_id=None,
            url=endpoint_url(tenant.label),
            actions=None,
        )
        tenant.endpoint = (row.id, ids.encode(webhooks.TYPE_NAME, row.uuid))


async def _stock(world: World, tenancy: Tenancy, tenant: Tenant, holder: Tenant) -> None:
    """Add the tenant's numbers and move each into its state; `holder` is a child if any."""
    async with world.db.read() as session:
        viewer = await access.authenticate(session, tenant.admin)
    assert viewer is not None
    own = world.by(viewer)
    secret, e164 = tenant.secret, tenant.numbers
    assigned, held = tenant.subscriptions
    texts = {name: tenant.text(name) for name in TEXTS}
    details = NumberDetails(
        sku=texts["sku"],
        routing=texts["routing"],
        visible_to_domain=texts["visibleToDomain"],
        tag=texts["tag"],
        notes=texts["notes"],
    )
    await own.add_named(list(e164.values()), vendor=texts["vendor"], details=details)
    reserved = [e164["reserved"]]
    await own.reserve(reserved, holder.org, remark=f"{secret} remark", tag=f"{secret} holder")
    await own.extend(reserved, tenancy.later, remark=secret)
    await own.lock([e164["locked"]], remark=f"{secret} lock")
    await own.assign([e164["assigned"]], assigned, owner=holder.org, remark=secret)
    await own.delete([e164["deleted"]], remark=secret)
    await own.assign([e164["held"]], held, remark=secret)
    await own.expire_subscription(held, remark=secret)
    await own.delete([e164["porting"]], remark=secret)
    request = porting.PortInRequest(
        [e164["porting"]],
        carrier=f"{secret} carrier",
        vendor=texts["vendor"],
        country="SG",
        sku=texts["sku"],
        reference=f"{secret} reference",
        remark=f"{secret} remark",
    )
    order: PortOrder = await own.run(porting.create_port_in, request)
    tenant.port_order = ids.encode(porting.TYPE_NAME, order.uuid)
    tenant.port_order_row = order.id


Snapshot = dict[str, list[tuple[Any, ...]]]


# What a refused request keeps by design: the count of intake answers about numbers held
# elsewhere (DESIGN, "Intake and integrity"), and when its token was last used.
BOOKKEEPING = ("intake_refusals",)
BOOKKEEPING_COLUMNS = {("tokens", "last_used_at")}


async def snapshot(db: Database, but: Sequence[str] = BOOKKEEPING) -> Snapshot:
    """Every row of every table but `but`: what a refused mutation must leave as it was."""
    found: Snapshot = {}
    async with db.read() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in but:
                continue
            columns = [c for c in table.columns if (table.name, c.name) not in BOOKKEEPING_COLUMNS]
            query = sa.select(*columns).order_by(*table.primary_key.columns)
            found[table.name] = [tuple(row) for row in (await session.execute(query)).all()]
    return found


# ---- how to fill an argument ----


class Expect(Enum):
    # Answered exactly as a made-up value of the same kind is.
    ABSENT = "absent"
    # Answered exactly as a value the viewer's own tenant holds (existence cannot be
    # hidden where values are unique: addNumbers of a number someone holds).
    EXISTING = "existing"
    # Only checked to answer within the viewer's subtree (a cursor is a position).
    SCOPED = "scoped"


Value = Callable[[Tenancy, str], Any]


@dataclass(frozen=True)
class Neutral:
    """An argument that names nothing of a tenant; `value` None leaves it out."""

    value: Value | None = None


@dataclass(frozen=True)
class Target:
    """An argument that names a tenant's object: the viewer's own, others', a stand-in."""

    own: Value
    foreign: Callable[[Tenancy, str], list[Any]]
    stand_in: Callable[[Tenancy, str, Any], Any]
    expect: Expect = Expect.ABSENT


Filler = Neutral | Target


def _spread(tenancy: Tenancy, label: str) -> list[tuple[Tenant, str]]:
    """Foreign (tenant, state) pairs covering every foreign tenant and every state."""
    foreign = tenancy.foreign(label)
    return [
        (foreign[i % len(foreign)], STATES[i % len(STATES)])
        for i in range(max(len(foreign), len(STATES)))
    ]


def _own(label: str, state: str = "available") -> Value:
    return lambda t, viewer: t.tenants[viewer].numbers[state]


def _made_up_like(value: Any) -> Any:
    if isinstance(value, list):
        return [made_up_number(i) for i in range(len(value))]
    return made_up_number(0)


ORG_ID = Target(
    own=lambda t, viewer: t.tenants[viewer].gid,
    foreign=lambda t, viewer: [f.gid for f in t.foreign(viewer)],
    stand_in=lambda t, viewer, _v: ids.encode("Organization", uuid.uuid4()),
)
# Allocation moves numbers between a parent and a child the viewer is above.
CHILD_ID = Target(
    own=lambda t, viewer: t.child(viewer).gid, foreign=ORG_ID.foreign, stand_in=ORG_ID.stand_in
)
ORG_UUID = Target(
    own=lambda t, viewer: str(t.tenants[viewer].org.uuid),
    foreign=lambda t, viewer: [str(f.org.uuid) for f in t.foreign(viewer)],
    stand_in=lambda t, viewer, _v: str(uuid.uuid4()),
)
NODE_ID = Target(
    own=lambda t, viewer: t.tenants[viewer].gid,
    foreign=lambda t, viewer: [
        *(f.gid for f in t.foreign(viewer)),
        *(number_gid(f.numbers[state]) for f, state in _spread(t, viewer)),
        # One token each: every token of every tenant would pass the alias limit.
        *(token_gid(f.token_keys[Role.ADMIN][1]) for f in t.foreign(viewer)),
        *(f.port_order for f in t.foreign(viewer)),
    ],
    stand_in=lambda t, viewer, _v: ids.encode("Organization", uuid.uuid4()),
)
NUMBER = Target(
    own=_own("available"),
    foreign=lambda t, viewer: [f.numbers[state] for f, state in _spread(t, viewer)],
    stand_in=lambda t, viewer, value: _made_up_like(value),
)
# The number leaving a subscription in a swap: the viewer's own is one that is assigned.
OLD_NUMBER = Target(own=_own("assigned"), foreign=NUMBER.foreign, stand_in=NUMBER.stand_in)
NUMBER_LIST = Target(
    own=lambda t, viewer: [t.tenants[viewer].numbers["available"]],
    foreign=lambda t, viewer: [[e for f in t.foreign(viewer) for e in f.numbers.values()]],
    stand_in=lambda t, viewer, value: _made_up_like(value),
)


def _chunks(values: list[str], size: int) -> list[list[str]]:
    """`values` in lists of exactly `size` (the last one overlapping the one before)."""
    return [
        values[max(0, min(i, len(values) - size)) :][:size] for i in range(0, len(values), size)
    ]


NEW_NUMBERS = Target(
    own=lambda t, viewer: [made_up_number(99)],
    foreign=lambda t, viewer: _chunks(
        [e for f in t.foreign(viewer) for e in f.numbers.values()], len(STATES)
    ),
    stand_in=lambda t, viewer, _v: list(t.tenants[viewer].numbers.values()),
    expect=Expect.EXISTING,
)
# A port-in takes the viewer's own DELETED numbers back, and answers every number held
# outside its subtree, DELETED or not, ALREADY_EXISTS: the deleted ones are left out of
# both sides, so the answers compare number for number.
_HELD = [state for state in STATES if state != "deleted"]
PORT_IN_NUMBERS = Target(
    own=lambda t, viewer: [made_up_number(98)],
    foreign=lambda t, viewer: _chunks(
        [f.numbers[state] for f in t.foreign(viewer) for state in _HELD], len(_HELD)
    ),
    stand_in=lambda t, viewer, _v: [t.tenants[viewer].numbers[state] for state in _HELD],
    expect=Expect.EXISTING,
)
TOKEN_ID = Target(
    own=lambda t, viewer: t.tenants[viewer].token_gids()[0],
    foreign=lambda t, viewer: [key for f in t.foreign(viewer) for key in f.token_gids()],
    stand_in=lambda t, viewer, _v: token_gid(str(uuid.uuid4())),
)
SUBSCRIPTION = Target(
    own=lambda t, viewer: str(t.tenants[viewer].subscriptions[0]),
    foreign=lambda t, viewer: [str(s) for f in t.foreign(viewer) for s in f.subscriptions],
    stand_in=lambda t, viewer, _v: str(uuid.uuid4()),
)


def _text(name: str) -> Target:
    return Target(
        own=lambda t, viewer: t.tenants[viewer].text(name),
        foreign=lambda t, viewer: [f.text(name) for f in t.foreign(viewer)],
        stand_in=lambda t, viewer, _v: f"made-up {name}",
    )


def _cursor(key: Callable[[Tenancy, Tenant, str], Any]) -> Target:
    return Target(
        own=lambda t, viewer: None,
        foreign=lambda t, viewer: [
            encode_cursor(key(t, f, state)) for f, state in _spread(t, viewer)
        ],
        stand_in=lambda t, viewer, _v: None,
        expect=Expect.SCOPED,
    )


def _made_up_operator() -> str:
    return ids.encode(operators.TYPE_NAME, uuid.uuid4())


# Operators the viewer can see are no secret (its reseller's and the provider's); the
# ones it cannot must be answered as made-up ones are.
OPERATOR_ID = Target(
    own=lambda t, viewer: _made_up_operator(),
    foreign=lambda t, viewer: [o.gid for o in t.operators_hidden_from(viewer)],
    stand_in=lambda t, viewer, _v: _made_up_operator(),
)
# Numbers of another tenant's operator are not the viewer's, whoever keeps the operator.
OPERATOR_IDS = Target(
    own=lambda t, viewer: [t.operators[viewer].gid],
    foreign=lambda t, viewer: [[t.operators[f.label].gid for f in t.foreign(viewer)]],
    stand_in=lambda t, viewer, _v: [_made_up_operator()],
)
PORT_ORDER_ID = Target(
    own=lambda t, viewer: t.tenants[viewer].port_order,
    foreign=lambda t, viewer: [f.port_order for f in t.foreign(viewer)],
    stand_in=lambda t, viewer, _v: ids.encode(porting.TYPE_NAME, uuid.uuid4()),
)
OPERATOR_CURSOR = Target(
    own=lambda t, viewer: None,
    foreign=lambda t, viewer: [
        encode_cursor(o.name_key, str(o.id)) for o in t.operators_hidden_from(viewer)
    ],
    stand_in=lambda t, viewer, _v: None,
    expect=Expect.SCOPED,
)


def _made_up(type_name: str) -> str:
    return ids.encode(type_name, uuid.uuid4())


ENDPOINT_ID = Target(
    own=lambda t, viewer: t.tenants[viewer].endpoint[1],
    foreign=lambda t, viewer: [f.endpoint[1] for f in t.foreign(viewer)],
    stand_in=lambda t, viewer, _v: _made_up(webhooks.TYPE_NAME),
)
DELIVERY_ID = Target(
    own=lambda t, viewer: t.tenants[viewer].delivery[1],
    foreign=lambda t, viewer: [f.delivery[1] for f in t.foreign(viewer)],
    stand_in=lambda t, viewer, _v: _made_up(webhooks.DELIVERY_TYPE),
)
ENDPOINT_CURSOR = Target(
    own=lambda t, viewer: None,
    foreign=lambda t, viewer: [encode_cursor(str(f.endpoint[0])) for f in t.foreign(viewer)],
    stand_in=lambda t, viewer, _v: None,
    expect=Expect.SCOPED,
)
DELIVERY_CURSOR = Target(
    own=lambda t, viewer: None,
    foreign=lambda t, viewer: [encode_cursor(f.delivery[0]) for f in t.foreign(viewer)],
    stand_in=lambda t, viewer, _v: None,
    expect=Expect.SCOPED,
)


def _constant(value: Any) -> Neutral:
    return Neutral(lambda _t, _viewer: value)


OMIT = Neutral()

# (type, argument name) -> filler. The type is the input type holding the argument, or
# "Type.field" for a field's own arguments; failing those, the argument's named type.
FILLERS: dict[tuple[str, str], Filler] = {
    # Ids, numbers and subscriptions wherever they appear.
    ("ID", "id"): NODE_ID,
    ("ID", "organizationId"): ORG_ID,
    ("ID", "parentId"): ORG_ID,
    ("ID", "reservedForId"): ORG_ID,
    # Ids that name an organization: an id of another type is bad input, not "not found".
    ("UpdateOrganizationInput", "id"): ORG_ID,
    ("Query.organization", "id"): ORG_ID,
    ("ID", "seriesId"): Neutral(lambda t, _viewer: t.series_gid),  # one catalogue for all
    ("AllocateNumbersInput", "organizationId"): CHILD_ID,
    ("WithdrawNumbersInput", "organizationId"): CHILD_ID,
    # Either a series and a quantity, or numbers: a foreign one is named on its own.
    ("AllocateNumbersInput", "seriesId"): OMIT,
    ("WithdrawNumbersInput", "seriesId"): OMIT,
    ("UUID", "ownerUuid"): ORG_UUID,
    ("UUID", "subscriptionUuid"): SUBSCRIPTION,
    ("UUID", "didReservationUuid"): Neutral(lambda _t, _viewer: str(uuid.uuid4())),
    ("String", "numbers"): NUMBER_LIST,
    ("String", "e164"): NUMBER,
    ("String", "oldNumber"): OLD_NUMBER,
    ("String", "newNumber"): NUMBER,
    # Cursors are positions in one list; a foreign one must not widen it.
    ("Query.organizations", "after"): _cursor(lambda _t, f, _s: f.org.path),
    ("Query.numbers", "after"): _cursor(lambda _t, f, state: f.numbers[state]),
    ("Organization.numbers", "after"): _cursor(lambda _t, f, state: f.numbers[state]),
    ("Number.history", "after"): _cursor(lambda t, f, state: t.last_event[f.numbers[state]]),
    ("Query.series", "after"): OMIT,  # series are one catalogue for every tenant
    ("Query.tokens", "after"): Target(
        own=lambda t, viewer: None,
        foreign=lambda t, viewer: [
            encode_cursor(*key) for f in t.foreign(viewer) for key in f.token_keys.values()
        ],
        stand_in=lambda t, viewer, _v: None,
        expect=Expect.SCOPED,
    ),
    ("RevokeTokenInput", "id"): TOKEN_ID,
    ("Boolean", "includeRevoked"): _constant(True),
    ("Query.numberEvents", "after"): _cursor(lambda t, f, state: t.last_event[f.numbers[state]]),
    # Events across numbers: each field that names a tenant's value.
    ("NumberEventFilter", "number"): NUMBER,
    ("NumberEventFilter", "actor"): Target(
        own=lambda t, viewer: f"{viewer}-secret ADMIN",
        foreign=lambda t, viewer: [f"{f.label}-secret ADMIN" for f in t.foreign(viewer)],
        stand_in=lambda t, viewer, _v: "made-up actor",
    ),
    ("NumberEventFilter", "actions"): _constant(["ADDED"]),
    ("Query.tags", "prefix"): _text("tag"),
    # The filter: each field that names a tenant's value.
    ("NumberFilter", "pattern"): NUMBER,
    **{("NumberFilter", name): _text(name) for name in TEXTS},
    ("NumberFilter", "includeDescendants"): _constant(True),
    ("NumberFilter", "operatorIds"): OPERATOR_IDS,
    ("NumberFilter", "reservationReasons"): _constant(["MANUAL", "SUBSCRIPTION_EXPIRED"]),
    ("NumberFilter", "deletionReasons"): _constant(["FAULTY"]),
    ("SeriesFilter", "search"): _constant("singapore"),
    ("OperatorFilter", "resellerId"): ORG_ID,
    ("CreateOperatorInput", "resellerId"): ORG_ID,
    ("UpdateOperatorInput", "id"): OPERATOR_ID,
    ("DeleteOperatorInput", "id"): OPERATOR_ID,
    ("Query.operators", "after"): OPERATOR_CURSOR,
    # Webhooks (issue 17): endpoints and deliveries are the tenant's own objects.
    ("UpdateWebhookEndpointInput", "id"): ENDPOINT_ID,
    ("DeleteWebhookEndpointInput", "id"): ENDPOINT_ID,
    ("PingWebhookEndpointInput", "id"): ENDPOINT_ID,
    ("RedeliverWebhookInput", "deliveryId"): DELIVERY_ID,
    ("Query.webhookEndpoints", "after"): ENDPOINT_CURSOR,
    ("WebhookEndpoint.deliveries", "after"): DELIVERY_CURSOR,
    ("WebhookEndpoint.deliveries", "status"): _constant("PENDING"),
    ("CreateWebhookEndpointInput", "url"): _constant("https://8.8.4.4/isolation"),
    ("UpdateWebhookEndpointInput", "url"): OMIT,
    ("UpdateWebhookEndpointInput", "enabled"): _constant(True),
    ("UpdateWebhookEndpointInput", "rotateSecret"): _constant(False),
    ("CreateWebhookEndpointInput", "actions"): _constant(["ADDED"]),
    ("UpdateWebhookEndpointInput", "actions"): OMIT,
    # Porting (issue 18): orders are named by id; what an order sets is not a target.
    ("PortOrderActionInput", "id"): PORT_ORDER_ID,
    ("ConfirmPortOrderInput", "id"): PORT_ORDER_ID,
    ("ConfirmPortOrderInput", "focDate"): Neutral(lambda t, _viewer: t.later.isoformat()),
    ("Query.portOrders", "after"): _cursor(lambda _t, f, _s: str(f.port_order_row)),
    ("PortOrder.numbers", "after"): _cursor(lambda _t, f, state: f.numbers[state]),
    ("PortOrderFilter", "direction"): _constant("IN"),
    ("PortOrderFilter", "statuses"): _constant(["DRAFT", "SUBMITTED"]),
    ("CreatePortInInput", "numbers"): PORT_IN_NUMBERS,
    ("CreatePortInInput", "vendor"): _constant("isolation vendor"),
    ("CreatePortInInput", "country"): _constant("SG"),
    ("CreatePortInInput", "sku"): _constant("isolation sku"),
    ("String", "carrier"): _constant("isolation carrier"),
    # What a request sets rather than names.
    ("AddNumbersInput", "numbers"): NEW_NUMBERS,
    ("AddNumbersInput", "vendor"): _constant("isolation vendor"),
    ("AddNumbersInput", "country"): _constant("SG"),
    ("AddNumbersInput", "sku"): _constant("isolation sku"),
    ("AssignNumbersInput", "subscriptionUuid"): Neutral(lambda _t, _v: str(uuid.uuid4())),
    ("CreateSeriesInput", "name"): _constant("Singapore 69"),
    ("CreateSeriesInput", "prefix"): _constant("+6569"),
    ("CreateSeriesInput", "country"): _constant("SG"),
    ("String", "name"): _constant("isolation"),
    ("OrganizationKind", "kind"): _constant("DEPARTMENT"),
    ("Role", "role"): _constant("ADMIN"),
    ("DeletionReason", "reason"): _constant("FAULTY"),
    # A policy set rather than named: any value in bounds (a free period of 1 day is under
    # every parent's ceiling).
    ("SetNumberPolicyInput", "freeReservationDays"): _constant(1),
    **{
        ("SetNumberPolicyInput", name): _constant(days)
        for name, days in {
            "expiredHoldDays": 30,
            "terminatedHoldDays": 20,
            "cancelledHoldDays": 10,
            "swapHoldDays": 2,
            "lockDays": 60,
            "noticeDays": 5,
        }.items()
    },
    ("AfterHoldState", "afterHold"): _constant("LOCKED"),
    # Optional ends keep their defaults (a reservation's, a lock's own period).
    ("ExtendReservationInput", "expiresAt"): Neutral(lambda t, _viewer: t.later.isoformat()),
    # A paid term (issue 15): what it sets; the numbers it names are filled above.
    ("BillingTermInput", "periodMonths"): _constant(1),
    ("BillingTermInput", "paidUntil"): OMIT,
    ("BillingTermInput", "billingCycles"): _constant(2),
    ("RenewNumbersInput", "periods"): _constant(1),
    ("SetBillingCyclesInput", "cycles"): _constant(3),
    # Blocks, registration, features, capacity (issue 15): what they set, not what they name.
    ("AddNumbersInput", "capacity"): _constant(2),
    ("EditNumbersInput", "capacity"): _constant(4),
    ("BlockReason", "reason"): _constant("FRAUD"),
    ("BlockNumbersInput", "until"): Neutral(lambda t, _viewer: t.later.isoformat()),
    ("RegistrationStatus", "status"): _constant("PENDING"),
    ("SetRegistrationInput", "identityRef"): _constant("isolation identity"),
    ("FeatureKind", "kind"): _constant("CNAM"),
    ("FeatureStatus", "status"): _constant("ACTIVE"),
    ("NumberFilter", "renews"): _constant(False),
    ("NumberFilter", "registrationStatuses"): _constant(["NOT_REQUIRED", "PENDING"]),
    ("NumberFilter", "quickFilter"): _constant("ALL"),
    ("Boolean", "includeDescendants"): _constant(True),
    **{
        (type_name, name): OMIT
        for type_name, names in {
            "Int": ["first", "quantity"],
            "String": [
                "remark",
                "tag",
                "notes",
                "sku",
                "vendor",
                "country",
                "routing",
                "visibleToDomain",
                "pattern",
                "billingEmail",
                "ownerEmail",
                "supportEmail",
                "reference",
            ],
            "Boolean": ["golden", "portedIn", "mayAddNumbers"],
            "Capability": ["capabilities"],
            "NumberState": ["states"],
            "DateTime": ["expiresBefore", "expiresAt", "from", "to"],
        }.items()
        for name in names
    },
}


# ---- the schema ----


def served_schema() -> graphql.GraphQLSchema:
    return graphql.build_schema(build_schema(Settings(_env_file=None)).as_str())


@dataclass(frozen=True)
class Leaf:
    """One argument (or input field) to fill: its path from the field, type, filler."""

    path: tuple[str, ...]
    type: graphql.GraphQLInputType
    filler: Filler | None

    @property
    def required(self) -> bool:
        return graphql.is_non_null_type(self.type)


@dataclass(frozen=True)
class Case:
    """A field of `owner`, with `target` (a leaf's path) aimed across tenants, if any."""

    owner: str
    field: str
    target: tuple[str, ...] | None

    @property
    def name(self) -> str:
        return f"{self.owner}.{self.field}({'.'.join(self.target or ('-',))})"


def _leaves(
    owner: str, args: dict[str, graphql.GraphQLArgument] | dict[str, graphql.GraphQLInputField]
) -> Iterator[Leaf]:
    for name, arg in args.items():
        named = graphql.get_named_type(arg.type)
        if isinstance(named, graphql.GraphQLInputObjectType):
            for leaf in _leaves(named.name, named.fields):
                yield Leaf((name, *leaf.path), leaf.type, leaf.filler)
        else:
            filler = FILLERS.get((owner, name)) or FILLERS.get((named.name, name))
            yield Leaf((name,), arg.type, filler)


def fields_with_arguments(
    schema: graphql.GraphQLSchema,
) -> Iterator[tuple[str, str, graphql.GraphQLField]]:
    """Every Query and Mutation field, and every other object field taking arguments.

    Subscriptions run over a websocket, not these HTTP cases; their filter is the
    numberEvents query's, checked by the same code (tests/system/test_live_updates.py
    aims a subscriber at another subtree).
    """
    for type_ in schema.type_map.values():
        if not isinstance(type_, graphql.GraphQLObjectType) or type_.name.startswith("__"):
            continue
        if type_ is schema.subscription_type:
            continue
        root = type_ in (schema.query_type, schema.mutation_type)
        for name, field_ in type_.fields.items():
            if root or field_.args:
                yield type_.name, name, field_


def leaves(owner: str, name: str, field_: graphql.GraphQLField) -> list[Leaf]:
    return list(_leaves(f"{owner}.{name}", field_.args))


def unfilled(schema: graphql.GraphQLSchema) -> list[str]:
    """Arguments FILLERS does not know, as "Type.field(path: Type)"."""
    return [
        f"{owner}.{name}({'.'.join(leaf.path)}: {leaf.type})"
        for owner, name, field_ in fields_with_arguments(schema)
        for leaf in leaves(owner, name, field_)
        if leaf.filler is None
    ]


def cases(schema: graphql.GraphQLSchema) -> list[Case]:
    """One case per target argument of each field; one with no target for the others."""
    found = []
    for owner, name, field_ in fields_with_arguments(schema):
        targets = [
            leaf.path for leaf in leaves(owner, name, field_) if isinstance(leaf.filler, Target)
        ]
        found += [Case(owner, name, path) for path in targets] or [Case(owner, name, None)]
    return found


def selection(
    type_: graphql.GraphQLNamedType, depth: int, left_out: frozenset[str] = frozenset()
) -> str:
    """Every field of `type_` that needs no argument, nested `depth` object levels down,
    but those named in `left_out`."""
    if isinstance(type_, graphql.GraphQLInterfaceType):
        raise AssertionError("select interfaces through `fragments`")
    assert isinstance(type_, graphql.GraphQLObjectType)
    chosen = []
    for name, field_ in type_.fields.items():
        if name in left_out or any(
            graphql.is_required_argument(arg) for arg in field_.args.values()
        ):
            continue
        inner = graphql.get_named_type(field_.type)
        if graphql.is_leaf_type(inner):
            chosen.append(name)
        elif depth > 0:
            chosen.append(f"{name} {{ {_inner(inner, depth - 1)} }}")
    return " ".join(chosen)


def _clashing(
    implementations: Sequence[graphql.GraphQLObjectType],
) -> dict[str, frozenset[str]]:
    """For each implementation, the leaf fields an earlier one has under the same name
    with another type: one selection may not ask for both under one name (GraphQL's
    rule that overlapping fields merge), and a leaf of another type (an enum of
    statuses) names nothing a tenant owns, so the first one asked for is enough."""
    first: dict[str, str] = {}
    left_out: dict[str, frozenset[str]] = {}
    for impl in implementations:
        clashes = set()
        for name, field_ in impl.fields.items():
            kind = str(field_.type)
            if first.setdefault(name, kind) != kind:
                assert graphql.is_leaf_type(graphql.get_named_type(field_.type)), name
                clashes.add(name)
        left_out[impl.name] = frozenset(clashes)
    return left_out


def _inner(type_: graphql.GraphQLNamedType, depth: int) -> str:
    if isinstance(type_, graphql.GraphQLInterfaceType):
        return "__typename"  # nested interfaces are reached through `node` instead
    return selection(type_, depth)


def fragment(
    schema: graphql.GraphQLSchema, type_: graphql.GraphQLNamedType, depth: int, name: str = "R"
) -> str:
    """`fragment <name> on <type>` selecting everything, interfaces through each implementation."""
    if isinstance(type_, graphql.GraphQLInterfaceType):
        implementations = schema.get_implementations(type_).objects
        clashing = _clashing(implementations)
        body = " ".join(
            f"... on {impl.name} {{ {selection(impl, depth, clashing[impl.name])} }}"
            for impl in implementations
        )
    else:
        body = selection(type_, depth)
    return f"fragment {name} on {type_.name} {{ {body} }}"


# ---- answers ----


def strings(value: Any) -> list[str]:
    """The strings of an argument's value, longest first (to replace them in an answer)."""
    if isinstance(value, dict):
        return sorted((s for v in value.values() for s in strings(v)), key=len, reverse=True)
    if isinstance(value, list):
        return sorted((s for v in value for s in strings(v)), key=len, reverse=True)
    return [] if value is None else [str(value)]


def masked(answer: Any, given: Any) -> str:
    """The answer as text, each string the request named at `given` replaced by its place."""
    text = json.dumps(answer, sort_keys=True)
    named = strings(given) if isinstance(given, list) else [str(given)] if given else []
    places = sorted(enumerate(named), key=lambda pair: len(pair[1]), reverse=True)
    for place, value in places:
        text = text.replace(value, f"<given {place}>")
    return text


def leaked(text: str, forbidden: Sequence[str]) -> list[str]:
    return [secret for secret in forbidden if secret in text]


def values_of(answer: Any, key: str) -> Iterator[Any]:
    """Every value under `key` anywhere in a JSON answer."""
    if isinstance(answer, dict):
        for name, value in answer.items():
            if name == key:
                yield value
            yield from values_of(value, key)
    elif isinstance(answer, list):
        for item in answer:
            yield from values_of(item, key)


def looks_absent(answer: Any) -> bool:
    """Null, or nothing found: no ids or numbers, every count zero."""
    return (
        not list(values_of(answer, "id"))
        and not list(values_of(answer, "e164"))
        and all(n == 0 for key in ("count", "totalCount") for n in values_of(answer, key))
    )


def refused_at(answer: Any, path: tuple[str, ...], codes: set[str]) -> bool:
    """The payload reports one of `codes` on the input field at `path`, or naming the
    value given there (a subscription is judged through the number it should hold)."""
    prefix = list(path)
    return any(
        error["code"] in codes
        and ((error["field"] or [])[: len(prefix)] == prefix or "<given" in error["message"])
        for error in (answer or {}).get("userErrors", [])
    )


# ---- requests ----

# Where fields of a type are reached from, for a viewer: the path in the answer and the
# document around the field. Query and Mutation fields are at the top.
ROUTES: dict[str, tuple[tuple[str, ...], Callable[[Tenancy, str], str]]] = {
    "Query": ((), lambda _t, _viewer: "{}"),
    "Mutation": ((), lambda _t, _viewer: "{}"),
    "Organization": (
        ("viewer", "organization"),
        lambda _t, _v: "viewer {{ organization {{ {} }} }}",
    ),
    "PortOrder": (
        ("node",),
        lambda t, viewer: (
            f'node(id: "{t.tenants[viewer].port_order}") {{{{ ... on PortOrder {{{{ {{}} }}}} }}}}'
        ),
    ),
    "Number": (
        ("number",),
        lambda t, viewer: (
            f'number(e164: "{t.tenants[viewer].numbers["available"]}") {{{{ {{}} }}}}'
        ),
    ),
    "WebhookEndpoint": (
        ("node",),
        lambda t, viewer: (
            f'node(id: "{t.tenants[viewer].endpoint[1]}") '
            "{{ ... on WebhookEndpoint {{ {} }} }}"
        ),
    ),
}
STAND_IN = "s"
# Object levels selected below each field: the walks (test_isolation) go deeper.
CASE_DEPTH = 1


@dataclass(frozen=True)
class Aimed:
    """A case's request for one viewer: alias a<i> names the i-th foreign value, `s` the
    stand-in (or, with no target, the viewer's own values)."""

    document: str
    variables: dict[str, Any]
    route: tuple[str, ...]
    given: dict[str, Any]


def _put(args: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        args = args.setdefault(name, {})
    args[path[-1]] = value


def _arguments(
    tenancy: Tenancy, viewer: str, found: list[Leaf], target: tuple[str, ...] | None, value: Any
) -> dict[str, Any]:
    args: dict[str, Any] = {}
    for leaf in found:
        filler = leaf.filler
        if leaf.path == target:
            given = value
        elif isinstance(filler, Target):
            given = filler.own(tenancy, viewer) if leaf.required else None
        else:
            given = filler.value(tenancy, viewer) if filler and filler.value else None
        if given is not None:
            _put(args, leaf.path, given)
    return args


def aim(schema: graphql.GraphQLSchema, tenancy: Tenancy, case: Case, viewer: str) -> Aimed:
    owner = schema.get_type(case.owner)
    assert isinstance(owner, graphql.GraphQLObjectType)
    field_ = owner.fields[case.field]
    found = leaves(case.owner, case.field, field_)
    given: dict[str, Any] = {}
    if case.target is not None:
        target = next(leaf.filler for leaf in found if leaf.path == case.target)
        assert isinstance(target, Target)
        foreign = target.foreign(tenancy, viewer)
        given = {f"a{i}": value for i, value in enumerate(foreign)}
        given[STAND_IN] = target.stand_in(tenancy, viewer, foreign[0])
    else:
        given[STAND_IN] = None
    variables: dict[str, Any] = {}
    definitions, calls = [], []
    for alias, value in given.items():
        args = _arguments(tenancy, viewer, found, case.target, value)
        named = []
        for name, arg_value in args.items():
            definitions.append(f"${alias}_{name}: {field_.args[name].type}")
            variables[f"{alias}_{name}"] = arg_value
            named.append(f"{name}: ${alias}_{name}")
        call = f"{alias}: {case.field}" + (f"({', '.join(named)})" if named else "")
        returns = graphql.get_named_type(field_.type)
        calls.append(call if graphql.is_leaf_type(returns) else call + " { ...R }")
    returns = graphql.get_named_type(field_.type)
    route, around = ROUTES[case.owner]
    operation = "mutation" if owner is schema.mutation_type else "query"
    heading = f"{operation}({', '.join(definitions)})" if definitions else operation
    document = f"{heading} {{ {around(tenancy, viewer).format(' '.join(calls))} }}"
    if not graphql.is_leaf_type(returns):
        document += " " + fragment(schema, returns, depth=CASE_DEPTH)
    return Aimed(document, variables, route, given)
