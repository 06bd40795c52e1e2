"""The /graphql endpoint: GraphiQL for anyone, operations only with a valid bearer token
(web/auth.py checks it before this endpoint runs).

Automatic persisted queries (Apollo's protocol): `extensions.persistedQuery =
{version: 1, sha256Hash}`. A hash alone runs the document registered under it, or
answers PersistedQueryNotFound (code PERSISTED_QUERY_NOT_FOUND); the client then sends
the document with its hash, which is checked (400 `provided sha does not match query`),
run, and registered once it has passed parsing and validation. GET works for a known
hash (queries only). With NUMBRA_PERSISTED_ONLY=true only registered documents run, and
only an ADMIN token of the provider registers new ones (sending the document with its
hash). A registered document is the same text, so the parse and validation caches
(keyed by it) serve it: a known document is parsed and validated once per process.

Cost limits: before an operation runs, its cost (schema/cost.py) is charged to its
token's budget for the clock minute (NUMBRA_COST_BUDGET_PER_MINUTE; domain/budgets.py,
shared through Redis when it is configured). Every answer carries `extensions.cost`
{requested, remaining, resetAt}; a request over budget is answered 429 with Retry-After
and a RATE_LIMITED error, and runs nothing.
"""

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson

# strawberry's own dependency: the type its views are called with, and its refusal.
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    Source,
    TokenKind,
    parse,
)
from graphql.language.lexer import Lexer
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter, GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.types import ExecutionResult

from domain import access, budgets, persisted
from domain.access import Viewer
from domain.budgets import Charge
from domain.clock import Clock
from domain.live import Hub
from models import Role
from models.database import Database
from schema.context import Context
from schema.cost import OPERATION, request_cost
from schema.errors import bad_request
from settings import Settings
from web import graphiql, request_body
from web.auth import bearer_token, viewer_of

log = logging.getLogger(__name__)

# Operation names as logs and metrics show them: a client's own words, so bounded.
ANONYMOUS = "anonymous"
OTHER = "other"
NO_STORE = "no-store"
_OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")
_OPERATION_KEYWORDS = frozenset({"query", "mutation", "subscription"})
NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
NOT_REGISTERED = "PERSISTED_QUERY_NOT_REGISTERED"
MISMATCH = "provided sha does not match query"
RATE_LIMITED = "RATE_LIMITED"
BAD_REQUEST = "BAD_REQUEST"
OVER_HTTP = (
    "subscriptions run over a websocket: open /graphql with the graphql-transport-ws "
    "protocol (GraphiQL does, once it has parsed the document)"
)
SUBSCRIPTION = OperationType.SUBSCRIPTION
# Documents whose cost is read from their parse, kept per process as strawberry's own.
PARSED_DOCUMENTS = 512
# The task re-checking a websocket's token, in its scope's state.
_WATCHDOG = "numbra_token_watchdog"


class _LiveHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with NUMBRA_PERSISTED_ONLY applied as over HTTP."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        view = self.view
        assert isinstance(view, NumbraGraphQL)
        query = message.get("payload", {}).get("query")
        if view.settings.persisted_only and self.connection_acknowledged:
            known = isinstance(query, str) and (
                await view.persisted.get(persisted.sha256_of(query)) is not None
            )
            if not known:
                error = GraphQLError(
                    "this server runs registered operations only",
                    extensions={"code": NOT_REGISTERED},
                )
                await self.send_message(
                    {"id": message["id"], "type": "error", "payload": [error.formatted]}
                )
                return
        await super().handle_subscribe(message)


class _TextFrames(ASGIWebSocketAdapter):
    """graphql-transport-ws messages go in text frames (the protocol's rule; a browser's
    client cannot parse a binary one), though the view's JSON is orjson's bytes."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        encoded = self.view.encode_json(message)
        try:
            await self.ws.send_text(encoded.decode() if isinstance(encoded, bytes) else encoded)
        except WebSocketDisconnect as gone:
            raise WebSocketDisconnected from gone


class NumbraGraphQL(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = _LiveHandler
    websocket_adapter_class = _TextFrames

    def __init__(self, schema: Any, db: Database, settings: Settings, clock: Clock) -> None:
        super().__init__(
            schema,
            graphql_ide="graphiql",
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.hub = Hub(db, settings.max_subscriptions_per_token)
        self.db = db
        self.settings = settings
        self.clock = clock
        self.persisted = persisted.store_for(
            db, clock, settings.redis_url, settings.max_persisted_queries
        )
        self.budgets = budgets.budgets_for(settings.redis_url)
        # graphql-core's own schema, which the cost is read against.
        self.types: GraphQLSchema = schema._schema

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql.page()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            state = scope.setdefault("state", {})
            try:
                await super().__call__(scope, receive, send)
            finally:
                watchdog = state.pop(_WATCHDOG, None)
                if watchdog is not None:
                    watchdog.cancel()
            return
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

    def encode_json(self, data: object) -> str | bytes:
        """The answer in compact JSON by orjson (UTF-8, not ASCII escapes), several
        times faster than the json module; what orjson refuses (an integer past 64
        bits from a custom scalar) goes through the json module as before."""
        try:
            return orjson.dumps(data)
        except TypeError:
            return super().encode_json(data)

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET with a persisted query's hash (no `query`) is an operation, not a page.
        return super().should_render_graphql_ide(request) and not _sends_extensions(request)

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        looked_up = await self._persisted_document(request_data, context)
        document = None if isinstance(looked_up, ExecutionResult) else looked_up[0]
        if self._operation_type(document, request_data.operation_name) is SUBSCRIPTION:
            # Else graphql-core would run it as a query: its root field resolves to null.
            sub_response.status_code = 400
            return _refusal(BAD_REQUEST, OVER_HTTP)
        charge = await self._charge(replace(request_data, query=document), context)
        if charge is not None and not charge.granted:
            retry_after = budgets.seconds_to_reset(self.clock.now())
            sub_response.status_code = 429
            sub_response.headers["Retry-After"] = str(retry_after)
            return _with_cost(_refusal(RATE_LIMITED, _over_budget(charge, retry_after)), charge)
        if isinstance(looked_up, ExecutionResult):
            return _with_cost(looked_up, charge)
        document, to_register = looked_up
        request_data = replace(request_data, query=document)
        # For the access log and the metrics (RequestIdMiddleware reads it back).
        request.scope.setdefault("state", {})["operation"] = operation_name(request_data)
        result = await super().execute_single(
            request=request,
            request_adapter=request_adapter,
            sub_response=sub_response,
            context=context,
            root_value=root_value,
            request_data=request_data,
        )
        if to_register is not None and document is not None and _got_past_validation(result):
            await self.persisted.add(to_register, document)
        return _with_cost(result, charge)

    def _operation_type(self, document: str | None, name: object) -> OperationType | None:
        """The type of the operation a document runs (None: strawberry says what is wrong)."""
        parsed = _parsed(document, self.settings.max_tokens) if document is not None else None
        if parsed is None:
            return None
        operations = [
            definition
            for definition in parsed.definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        if isinstance(name, str):
            operations = [op for op in operations if op.name is not None and op.name.value == name]
        return operations[0].operation if len(operations) == 1 else None

    async def _charge(self, request_data: GraphQLRequestData, context: Context) -> Charge | None:
        """Charge the request's cost to its token's budget for this minute (None: no token)."""
        viewer = context.viewer_or_none
        if viewer is None or viewer.token_uuid is None:
            return None
        parsed = (
            _parsed(request_data.query, self.settings.max_tokens)
            if isinstance(request_data.query, str)
            else None
        )
        operation = request_data.operation_name
        cost = (
            request_cost(
                self.types,
                parsed,
                request_data.variables,
                operation if isinstance(operation, str) else None,
                self.settings.max_page_size,
            )
            if parsed is not None
            else OPERATION
        )
        return await self.budgets.charge(
            f"cost:{viewer.token_uuid}",
            cost,
            self.settings.cost_budget_per_minute,
            self.clock.now(),
        )

    async def _persisted_document(
        self, request_data: GraphQLRequestData, context: Context
    ) -> tuple[str | None, str | None] | ExecutionResult:
        """The document to run and the hash to register it under once it has run (None:
        nothing to register), or the answer refusing the request."""
        document = request_data.query
        extension = (request_data.extensions or {}).get("persistedQuery")
        locked = self.settings.persisted_only
        if extension is None:
            if not locked or document is None:
                return document, None
            if await self.persisted.get(persisted.sha256_of(document)) is None:
                return _refusal(
                    NOT_REGISTERED,
                    "this server runs registered operations only: send the sha256Hash of "
                    "one (extensions.persistedQuery)",
                )
            return document, None
        sha256 = _sha256_of_extension(extension)
        if document is None:
            found = await self.persisted.get(sha256)
            if found is None:
                return _refusal(NOT_FOUND, "PersistedQueryNotFound")
            return found, None
        if persisted.sha256_of(document) != sha256:
            raise HTTPException(400, MISMATCH)
        if await self.persisted.get(sha256) is not None:
            return document, None
        viewer = context.viewer_or_none
        registrar = viewer is not None and viewer.at_root and viewer.has_role(Role.ADMIN)
        if locked and not registrar:
            return _refusal(
                NOT_REGISTERED,
                "this server runs registered operations only; an ADMIN token of the "
                "provider registers new ones",
            )
        return document, sha256

    async def get_context(self, request: Any, response: Any = None) -> Context:
        return Context(
            db=self.db,
            settings=self.settings,
            clock=self.clock,
            request_id=request.scope.get("state", {}).get("request_id", "-"),
            request=request,
            response=response,
            viewer_or_none=viewer_of(request.scope),
            hub=self.hub,
        )

    async def on_ws_connect(self, context: Context) -> None:
        """A websocket's token: connection_init's {"Authorization": "Bearer …"}, else the
        upgrade request's header. Without a valid one the socket is closed with 4403."""
        raw = _bearer_of(context.connection_params) or _header_bearer(context.request)
        viewer = await self._viewer(raw)
        if raw is None or viewer is None:
            raise ConnectionRejectionError
        context.become(viewer)
        websocket = context.request
        assert isinstance(websocket, WebSocket)
        websocket.scope.setdefault("state", {})[_WATCHDOG] = asyncio.create_task(
            self._watch(websocket, raw)
        )

    async def _viewer(self, raw: str | None) -> Viewer | None:
        if raw is None:
            return None
        async with self.db.read_statements() as session:
            return await access.authenticate(session, raw)

    async def _watch(self, websocket: WebSocket, raw: str) -> None:
        """Look the token up again now and then: a revoked or expired one's socket closes."""
        while True:
            await asyncio.sleep(self.settings.live_token_check_seconds)
            try:
                viewer = await self._viewer(raw)
            except Exception:
                log.exception("live updates: could not check a token again; will retry")
                continue
            if viewer is None:
                with contextlib.suppress(RuntimeError):
                    await websocket.close(code=4403, reason="the token is no longer valid")
                return


def _bearer_of(params: dict[str, object] | None) -> str | None:
    """The token of connection_init's payload: {"Authorization": "Bearer <token>"}."""
    for key, value in (params or {}).items():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def _header_bearer(request: object) -> str | None:
    return bearer_token(request) if isinstance(request, HTTPConnection) else None


def _sha256_of_extension(extension: Any) -> str:
    if (
        not isinstance(extension, dict)
        or extension.get("version") != 1
        or not isinstance(extension.get("sha256Hash"), str)
        or not persisted.SHA256.fullmatch(extension["sha256Hash"])
    ):
        raise HTTPException(
            400,
            "extensions.persistedQuery must be {version: 1, sha256Hash: "
            "the lowercase hex SHA-256 of the query}",
        )
    return str(extension["sha256Hash"])


def _refusal(code: str, message: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


@functools.lru_cache(maxsize=PARSED_DOCUMENTS)
def _parsed(document: str, max_tokens: int) -> DocumentNode | None:
    """The document's syntax tree, or None if it does not parse (strawberry says why)."""
    try:
        return parse(document, no_location=True, max_tokens=max_tokens)
    except GraphQLError:
        return None


def _with_cost(result: ExecutionResult, charge: Charge | None) -> ExecutionResult:
    if charge is not None:
        result.extensions = {
            **(result.extensions or {}),
            "cost": {
                "requested": charge.requested,
                "remaining": charge.remaining,
                "resetAt": charge.reset_at.isoformat(),
            },
        }
    return result


def _over_budget(charge: Charge, retry_after: int) -> str:
    if charge.requested > charge.limit:
        return (
            f"this request costs {charge.requested}, more than the whole budget of "
            f"{charge.limit} a minute: ask for smaller pages"
        )
    return (
        f"this request costs {charge.requested} and {charge.remaining} of this token's "
        f"budget of {charge.limit} a minute is left: retry in {retry_after} s"
    )


def _got_past_validation(result: ExecutionResult) -> bool:
    """Whether the document parsed and validated: errors before execution have no path."""
    return all(error.path is not None for error in result.errors or [])


def wants_ide(request: HTTPConnection) -> bool:
    """A browser opening /graphql gets GraphiQL; it runs queries only with a token."""
    return (
        request.scope["method"] == "GET"
        and "query" not in request.query_params
        and not _sends_extensions(request)
        and "text/html" in request.headers.get("accept", "")
    )


def _sends_extensions(request: Any) -> bool:
    return "extensions" in request.query_params


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


@functools.lru_cache(maxsize=PARSED_DOCUMENTS)
def _first_operation_name(document: str) -> str | None:
    """`query Name` or `mutation Name` at the start, read by the GraphQL lexer (comments
    skipped) without parsing the whole document; kept per document, as its parse is."""
    lexer = Lexer(Source(document))
    try:
        keyword, name = lexer.advance(), lexer.advance()
    except GraphQLError:
        return None
    if keyword.kind is TokenKind.NAME and keyword.value in _OPERATION_KEYWORDS:
        return name.value if name.kind is TokenKind.NAME else None
    return None
