"""DataLoaders, made per request, so nested views cost one query per level, not per row."""

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from strawberry.dataloader import DataLoader

from domain import history, organizations
from models import NumberEvent, Organization, Series
from models.database import Database

# (number id, first, id of the event the page starts after)
HistoryKey = tuple[int, int, int | None]


class Loaders:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.organization = DataLoader[int, Organization | None](self._load_organizations)
        self.children = DataLoader[int, list[Organization]](self._load_children)
        self.series = DataLoader[int, Series | None](self._load_series)
        self.history = DataLoader[HistoryKey, list[NumberEvent]](self._load_history)
        self.history_count = DataLoader[int, int](self._load_history_counts)

    async def _load_organizations(self, keys: Sequence[int]) -> list[Organization | None]:
        async with self._db.read() as session:
            found = await organizations.by_ids(session, keys)
        return [found.get(key) for key in keys]

    async def _load_children(self, keys: Sequence[int]) -> list[list[Organization]]:
        async with self._db.read() as session:
            found = await organizations.children_of(session, keys)
        return [found[key] for key in keys]

    async def _load_series(self, keys: Sequence[int]) -> list[Series | None]:
        async with self._db.read() as session:
            rows = await session.scalars(sa.select(Series).where(Series.id.in_(keys)))
            found = {row.id: row for row in rows}
        return [found.get(key) for key in keys]

    async def _load_history(self, keys: Sequence[HistoryKey]) -> list[list[NumberEvent]]:
        # One query per distinct page shape; an SPA asks the same shape for every row.
        shapes: dict[tuple[int, int | None], list[int]] = defaultdict(list)
        for number_id, first, before in keys:
            shapes[(first, before)].append(number_id)
        found: dict[HistoryKey, list[NumberEvent]] = {}
        async with self._db.read() as session:
            for (first, before), number_ids in shapes.items():
                pages = await history.pages(session, number_ids, first, before)
                for number_id in number_ids:
                    found[(number_id, first, before)] = pages.get(number_id, [])
        return [found[key] for key in keys]

    async def _load_history_counts(self, keys: Sequence[int]) -> list[int]:
        async with self._db.read() as session:
            found = await history.counts(session, keys)
        return [found.get(key, 0) for key in keys]
