"""DataLoaders, made per request, so nested views cost one query per level, not per row."""

from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from domain import organizations
from models import Organization
from models.database import Database


class Loaders:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.organization = DataLoader[int, Organization | None](self._load_organizations)
        self.children = DataLoader[int, list[Organization]](self._load_children)

    async def _load_organizations(self, keys: Sequence[int]) -> list[Organization | None]:
        async with self._db.read() as session:
            found = await organizations.by_ids(session, keys)
        return [found.get(key) for key in keys]

    async def _load_children(self, keys: Sequence[int]) -> list[list[Organization]]:
        async with self._db.read() as session:
            found = await organizations.children_of(session, keys)
        return [found[key] for key in keys]
