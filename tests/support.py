"""Helpers for tests that go through the served API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import ASGIApp

from domain import ids, organizations, tokens
from domain.clock import Clock
from models import Base, Organization, OrganizationKind, Role
from models.database import Database


class Api:
    """An HTTP client on the ASGI app, holding a default token."""

    def __init__(self, client: httpx.AsyncClient, token: str, db: Database, clock: Clock) -> None:
        self.client = client
        self.token = token
        self.db = db
        self.clock = clock

    @classmethod
    @asynccontextmanager
    async def open(
        cls, app: ASGIApp, token: str, db: Database, clock: Clock
    ) -> AsyncIterator["Api"]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://numbra.test") as client:
            yield cls(client, token, db, clock)

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        return await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token or self.token}"},
        )

    async def gql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """Run an operation that must succeed without GraphQL errors; return its data."""
        response = await self.post(query, variables, token)
        body = response.json()
        assert response.status_code == 200, body
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def errors(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> list[dict[str, Any]]:
        """Run an operation that must fail with GraphQL errors; return them."""
        body = (await self.post(query, variables, token)).json()
        assert body.get("errors"), body
        errors: list[dict[str, Any]] = body["errors"]
        return errors

    async def org(
        self, name: str, kind: OrganizationKind, parent: Organization, **emails: str
    ) -> Organization:
        """Create an organization directly through the domain layer (setup, not the test)."""
        async with self.db.write() as session:
            fields = organizations.OrganizationFields(name=name, **emails)
            return await organizations.add_child(session, parent, kind, self.clock, fields)

    async def token_for(self, org: Organization, role: Role = Role.ADMIN, name: str = "") -> str:
        async with self.db.write() as session:
            return await tokens.issue(session, org, name or f"{org.name} {role}", role, self.clock)

    async def root(self) -> Organization:
        async with self.db.read() as session:
            root = await organizations.get_root(session)
        assert root is not None
        return root


def gid(org: Organization) -> str:
    return ids.encode(organizations.TYPE_NAME, org.uuid)


class StatementCounter:
    """Counts the SQL statements a database runs while `counting` is on."""

    def __init__(self, db: Database) -> None:
        self._engines = [engine.sync_engine for engine in db.engines]
        self.count = 0
        for engine in self._engines:
            sa.event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, *_args: Any) -> None:
        self.count += 1

    def reset(self) -> None:
        self.count = 0

    def close(self) -> None:
        for engine in self._engines:
            sa.event.remove(engine, "before_cursor_execute", self._on_execute)


async def empty_postgresql(url: str) -> None:
    """Empty every table of the shared PostgreSQL test database, for the next test."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await engine.dispose()
