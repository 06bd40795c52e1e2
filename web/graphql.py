"""The /graphql endpoint: GraphiQL for anyone, operations only with a valid bearer token."""

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL

from domain import access
from domain.access import Viewer
from domain.clock import Clock
from models.database import Database
from resolvers.context import Context
from settings import Settings


class NumbraGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Any, db: Database, settings: Settings, clock: Clock) -> None:
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=True)
        self.db = db
        self.settings = settings
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope, receive)
            if not _wants_ide(request):
                viewer = await self._authenticate(request)
                if viewer is None:
                    await _unauthorized()(scope, receive, send)
                    return
                scope.setdefault("state", {})["viewer"] = viewer
        await super().__call__(scope, receive, send)

    async def _authenticate(self, request: Request) -> Viewer | None:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            return None
        async with self.db.read() as session:
            return await access.authenticate(session, credentials.strip())

    async def get_context(self, request: Any, response: Any = None) -> Context:
        return Context(
            db=self.db,
            settings=self.settings,
            clock=self.clock,
            request_id=request.scope.get("state", {}).get("request_id", "-"),
            request=request,
            response=response,
            viewer_or_none=request.scope.get("state", {}).get("viewer"),
        )


def _wants_ide(request: Request) -> bool:
    """A browser opening /graphql gets GraphiQL; it runs queries only with a token."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def _unauthorized() -> Response:
    return JSONResponse(
        {"errors": [{"message": "a valid bearer token is required"}]},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="numbra"'},
    )
