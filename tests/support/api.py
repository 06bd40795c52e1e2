"""Helpers for tests that go through the served API."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.types import ASGIApp

from domain import ids, organizations, tokens
from domain.clock import Clock
from models import Organization, OrganizationKind, Role
from models.database import Database
from tests.support.world import new_organization


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
            headers=self.auth(token),
        )

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    async def upload_csv(
        self, text: str | bytes, token: str | None = None, **params: Any
    ) -> httpx.Response:
        """POST a CSV file to /import/numbers, with `params` as its query parameters."""
        query = {
            key: str(value).lower() if isinstance(value, bool) else value
            for key, value in params.items()
        }
        content = text.encode() if isinstance(text, str) else text
        return await self.client.post(
            "/import/numbers",
            params=query,
            files={"file": ("numbers.csv", content, "text/csv")},
            headers=self.auth(token),
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
        """Create an organization through the world builder (setup, not the test)."""
        return await new_organization(self.db, self.clock, name, kind, parent, **emails)

    async def token_for(self, org: Organization, role: Role = Role.ADMIN, name: str = "") -> str:
        async with self.db.write() as session:
            return await tokens.issue(session, org, name or f"{org.name} {role}", role, self.clock)

    async def root(self) -> Organization:
        async with self.db.read() as session:
            root = await organizations.get_root(session)
        assert root is not None
        return root


def without_cost(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without the `extensions.cost` every answer carries (its budget counts down)."""
    extensions = {k: v for k, v in body.get("extensions", {}).items() if k != "cost"}
    return {k: v for k, v in body.items() if k != "extensions"} | (
        {"extensions": extensions} if extensions else {}
    )


def gid(org: Organization) -> str:
    return ids.encode(organizations.TYPE_NAME, org.uuid)
