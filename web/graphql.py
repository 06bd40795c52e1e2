"""The /graphql endpoint: GraphiQL for anyone, operations only with a valid bearer token
(web/auth.py checks it before this endpoint runs)."""

import re
from typing import Any

# strawberry's own dependency: the type its views are called with, and its refusal.
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError, Source, TokenKind
from graphql.language.lexer import Lexer
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLRequestData
from strawberry.types import ExecutionResult

from domain.clock import Clock
from models.database import Database
from schema.context import Context
from schema.errors import bad_request
from settings import Settings
from web import graphiql, request_body
from web.auth import viewer_of

# Operation names as logs and metrics show them: a client's own words, so bounded.
ANONYMOUS = "anonymous"
OTHER = "other"
NO_STORE = "no-store"
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_OPERATION_KEYWORDS = frozenset({"query", "mutation", "subscription"})


class NumbraGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: Any, db: Database, settings: Settings, clock: Clock) -> None:
        super().__init__(schema, graphql_ide="graphiql", allow_queries_via_get=True)
        self.db = db
        self.settings = settings
        self.clock = clock

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.page()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # As strawberry's own, but a refused request is answered in JSON, as any other.
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as refused:
            response = bad_request(refused.reason, refused.status_code)
            response.headers["Cache-Control"] = NO_STORE
        await response(scope, receive, send)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        # Answers hold a tenant's inventory: no cache keeps them (GET answers included).
        sub_response = await super().get_sub_response(request)
        sub_response.headers["Cache-Control"] = NO_STORE
        return sub_response

    def decode_json(self, data: str | bytes) -> object:
        return request_body.decode(data)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        # For the access log and the metrics (RequestIdMiddleware reads it back).
        request.scope.setdefault("state", {})["operation"] = operation_name(request_data)
        return await super().execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )

    async def get_context(self, request: Any, response: Any = None) -> Context:
        return Context(
            db=self.db,
            settings=self.settings,
            clock=self.clock,
            request_id=request.scope.get("state", {}).get("request_id", "-"),
            request=request,
            response=response,
            viewer_or_none=viewer_of(request.scope),
        )


def wants_ide(request: HTTPConnection) -> bool:
    """A browser opening /graphql gets GraphiQL; it runs queries only with a token."""
    return (
        request.scope["method"] == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "")
    )


def operation_name(request_data: GraphQLRequestData) -> str:
    """The operationName sent, else the name the document gives its (first) operation.

    Names that are not GraphQL names of at most 64 characters are all OTHER.
    """
    name = request_data.operation_name
    if name is None:
        name = _first_operation_name(request_data.query or "")
    if name is None:
        return ANONYMOUS
    return name if isinstance(name, str) and _OPERATION_NAME.fullmatch(name) else OTHER


def _first_operation_name(document: str) -> str | None:
    """`query Name` or `mutation Name` at the start, read by the GraphQL lexer (comments
    skipped) without parsing the whole document."""
    lexer = Lexer(Source(document))
    try:
        keyword, name = lexer.advance(), lexer.advance()
    except GraphQLError:
        return None
    if keyword.kind is TokenKind.NAME and keyword.value in _OPERATION_KEYWORDS:
        return name.value if name.kind is TokenKind.NAME else None
    return None
