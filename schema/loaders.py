"""DataLoaders, made per request, so nested views cost one query per level, not per row."""

from collections import defaultdict
from collections.abc import Sequence
from functools import cached_property

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.dataloader import DataLoader

from domain import (
    history,
    inventory,
    number_policy,
    operators,
    organizations,
    porting,
    search,
    series,
    webhooks,
)
from domain.access import Viewer
from domain.errors import Problems
from domain.inventory import AllocationRow
from domain.number_policy import Overrides
from domain.organizations import OrganizationRead
from domain.pagination import Page, PageRequest
from domain.series import SeriesRead
from domain.webhooks import DeliveryPageKey
from models import NumberEvent, NumberState, PortOrder
from models.database import Database
from models.numbers import NumberRecord
from models.operators import Operator
from models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint

# (number id, first, id of the event the page starts after)
HistoryKey = tuple[int, int, int | None]
# (organization id, include descendants, filter, page request)
PoolKey = tuple[int, bool, search.NumberFilter, PageRequest]
# A pool's key, and the columns its page selects (None: all; domain/search.py, `page`).
PoolPageKey = tuple[int, bool, search.NumberFilter, PageRequest, frozenset[str] | None]
PageShape = tuple[bool, search.NumberFilter, PageRequest, frozenset[str] | None]


class Loaders:
    """The request's DataLoaders, each made when first used (a request uses one or two
    of them, if any)."""

    def __init__(self, db: Database, viewer: Viewer | None) -> None:
        self._db = db
        self._viewer = viewer

    @cached_property
    def organization(self) -> DataLoader[int, OrganizationRead | None]:
        return DataLoader(self._load_organizations)

    @cached_property
    def children(self) -> DataLoader[int, list[OrganizationRead]]:
        return DataLoader(self._load_children)

    @cached_property
    def series(self) -> DataLoader[int, SeriesRead | None]:
        return DataLoader(self._load_series)

    @cached_property
    def history(self) -> DataLoader[HistoryKey, list[NumberEvent]]:
        return DataLoader(self._load_history)

    @cached_property
    def history_count(self) -> DataLoader[int, int]:
        return DataLoader(self._load_history_counts)

    @cached_property
    def allocations(self) -> DataLoader[int, list[AllocationRow]]:
        return DataLoader(self._load_allocations)

    @cached_property
    def state_counts(self) -> DataLoader[tuple[int, bool], dict[NumberState, int]]:
        return DataLoader(self._load_state_counts)

    @cached_property
    def pool_page(self) -> DataLoader[PoolPageKey, Page[NumberRecord]]:
        return DataLoader(self._load_pool_pages)

    @cached_property
    def pool_count(self) -> DataLoader[PoolKey, int]:
        return DataLoader(self._load_pool_counts)

    @cached_property
    def policy_overrides(self) -> DataLoader[int, Overrides]:
        return DataLoader(self._load_policy_overrides)

    @cached_property
    def operator(self) -> DataLoader[int, Operator | None]:
        return DataLoader(self._load_operators)

    @cached_property
    def operator_counts(self) -> DataLoader[int, dict[NumberState, int]]:
        return DataLoader(self._load_operator_counts)

    @cached_property
    def webhook_endpoint(self) -> DataLoader[int, WebhookEndpoint | None]:
        return DataLoader(self._load_endpoints)

    @cached_property
    def delivery_page(self) -> DataLoader[tuple[int, DeliveryPageKey], Page[WebhookDelivery]]:
        return DataLoader(self._load_delivery_pages)

    @cached_property
    def delivery_count(self) -> DataLoader[tuple[int, DeliveryStatus | None], int]:
        return DataLoader(self._load_delivery_counts)

    @cached_property
    def port_order(self) -> DataLoader[int, PortOrder | None]:
        return DataLoader(self._load_port_orders)

    async def _load_endpoints(self, keys: Sequence[int]) -> list[WebhookEndpoint | None]:
        async with self._db.read_statements() as session:
            found = await webhooks.endpoints_by_ids(session, keys)
        return [found.get(key) for key in keys]

    async def _load_delivery_pages(
        self, keys: Sequence[tuple[int, DeliveryPageKey]]
    ) -> list[Page[WebhookDelivery]]:
        """One query per distinct (status, first, after) among the endpoints asked for."""
        by_spec: dict[DeliveryPageKey, list[int]] = defaultdict(list)
        for endpoint_id, spec in keys:
            by_spec[spec].append(endpoint_id)
        found: dict[tuple[int, DeliveryPageKey], Page[WebhookDelivery]] = {}
        async with self._db.read_statements() as session:
            for spec, endpoint_ids in by_spec.items():
                pages = await webhooks.delivery_pages(session, endpoint_ids, spec)
                found.update({(endpoint_id, spec): pages[endpoint_id] for endpoint_id in pages})
        return [found[key] for key in keys]

    async def _load_delivery_counts(
        self, keys: Sequence[tuple[int, DeliveryStatus | None]]
    ) -> list[int]:
        by_status: dict[DeliveryStatus | None, list[int]] = defaultdict(list)
        for endpoint_id, status in keys:
            by_status[status].append(endpoint_id)
        found: dict[tuple[int, DeliveryStatus | None], int] = {}
        async with self._db.read_statements() as session:
            for status, endpoint_ids in by_status.items():
                counts = await webhooks.delivery_counts(session, endpoint_ids, status)
                found.update({(endpoint_id, status): n for endpoint_id, n in counts.items()})
        return [found[key] for key in keys]

    async def _load_organizations(self, keys: Sequence[int]) -> list[OrganizationRead | None]:
        async with self._db.read_connection() as connection:
            found = await organizations.read_by_ids(connection, keys)
        return [found.get(key) for key in keys]

    async def _load_children(self, keys: Sequence[int]) -> list[list[OrganizationRead]]:
        async with self._db.read_connection() as connection:
            found = await organizations.children_of(connection, keys)
        return [found[key] for key in keys]

    async def _load_series(self, keys: Sequence[int]) -> list[SeriesRead | None]:
        async with self._db.read_connection() as connection:
            found = await series.read_by_ids(connection, keys)
        return [found.get(key) for key in keys]

    async def _load_policy_overrides(self, keys: Sequence[int]) -> list[Overrides]:
        async with self._db.read_statements() as session:
            found = await number_policy.overrides(session, keys)
        return [found.get(key, Overrides()) for key in keys]

    async def _load_operators(self, keys: Sequence[int]) -> list[Operator | None]:
        assert self._viewer is not None
        async with self._db.read_statements() as session:
            found = await operators.by_ids(session, self._viewer, keys)
        return [found.get(key) for key in keys]

    async def _load_operator_counts(self, keys: Sequence[int]) -> list[dict[NumberState, int]]:
        assert self._viewer is not None
        async with self._db.read_statements() as session:
            found = await operators.state_counts(session, self._viewer, keys)
        return [found[key] for key in keys]

    async def _load_port_orders(self, keys: Sequence[int]) -> list[PortOrder | None]:
        """The open port order each number (by id) is in."""
        async with self._db.read_statements() as session:
            found = await porting.open_orders(session, keys)
        return [found.get(key) for key in keys]

    def _pools(self) -> str | None:
        """The subtree whose events the viewer reads: every event for the provider's tokens."""
        if self._viewer is None or self._viewer.at_root:
            return None
        return self._viewer.org_path

    async def _load_history(self, keys: Sequence[HistoryKey]) -> list[list[NumberEvent]]:
        # One query per distinct page shape; an SPA asks the same shape for every row.
        shapes: dict[tuple[int, int | None], list[int]] = defaultdict(list)
        for number_id, first, before in keys:
            shapes[(first, before)].append(number_id)
        found: dict[HistoryKey, list[NumberEvent]] = {}
        async with self._db.read_statements() as session:
            for (first, before), number_ids in shapes.items():
                pages = await history.pages(session, number_ids, first, before, self._pools())
                for number_id in number_ids:
                    found[(number_id, first, before)] = pages.get(number_id, [])
        return [found[key] for key in keys]

    async def _load_history_counts(self, keys: Sequence[int]) -> list[int]:
        async with self._db.read_statements() as session:
            found = await history.counts(session, keys, self._pools())
        return [found.get(key, 0) for key in keys]

    async def _load_allocations(self, keys: Sequence[int]) -> list[list[AllocationRow]]:
        async with self._db.read_connection() as connection:
            found = await inventory.allocations(connection, keys)
        return [found.get(key, []) for key in keys]

    async def _load_state_counts(
        self, keys: Sequence[tuple[int, bool]]
    ) -> list[dict[NumberState, int]]:
        found: dict[tuple[int, bool], dict[NumberState, int]] = {}
        async with self._db.read_connection() as connection:
            for include in (False, True):
                org_ids = [org_id for org_id, flag in keys if flag is include]
                if org_ids:
                    counts = await inventory.state_counts(connection, org_ids, include)
                    found.update({(org_id, include): c for org_id, c in counts.items()})
        return [found[key] for key in keys]

    async def _load_pool_pages(self, keys: Sequence[PoolPageKey]) -> list[Page[NumberRecord]]:
        """One query per distinct (include descendants, filter, page, columns)."""
        shapes: dict[PageShape, list[int]] = defaultdict(list)
        for org_id, include, spec, request, columns in keys:
            shapes[(include, spec, request, columns)].append(org_id)
        found: dict[PoolPageKey, Page[NumberRecord]] = {}
        assert self._viewer is not None
        async with self._db.read_connection() as connection:
            for (include, spec, request, columns), org_ids in shapes.items():
                pages = await search.pages_per_organization(
                    connection, self._viewer, spec, org_ids, include, request, columns
                )
                found.update({(o, include, spec, request, columns): p for o, p in pages.items()})
        return [found[key] for key in keys]

    async def _load_pool_counts(self, keys: Sequence[PoolKey]) -> list[int]:
        found: dict[PoolKey, int] = {}
        async with self._db.read_statements() as session:
            for (include, spec, request), org_ids in _shapes(keys).items():
                where = await self._where(session, spec)
                counts = await search.counts_per_organization(session, org_ids, include, where)
                found.update({(o, include, spec, request): n for o, n in counts.items()})
        return [found[key] for key in keys]

    async def _where(
        self, session: AsyncSession, spec: search.NumberFilter
    ) -> list[sa.ColumnElement[bool]]:
        assert self._viewer is not None
        problems = Problems()
        where = await search.build(session, self._viewer, spec, problems)
        problems.raise_if_any()
        return where


def _shapes(
    keys: Sequence[PoolKey],
) -> dict[tuple[bool, search.NumberFilter, PageRequest], list[int]]:
    """Keys grouped by everything but the organization: one query per group."""
    shapes: dict[tuple[bool, search.NumberFilter, PageRequest], list[int]] = defaultdict(list)
    for org_id, include, spec, request in keys:
        shapes[(include, spec, request)].append(org_id)
    return shapes
