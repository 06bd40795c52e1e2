"""The per-request context every resolver receives (a typed dataclass, never a dict), and
`Info`, the one annotation resolvers take it by.

It lives in schema/ because the types' own field resolvers take it, as the query and
mutation resolvers in resolvers/ do; both import it from here.
"""

from dataclasses import dataclass, field
from functools import cached_property

import strawberry
from starlette.requests import Request
from starlette.responses import Response

from domain.access import Caller, Viewer
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from domain.live import Hub
from domain.policy import Policy
from models.database import Database
from schema.loaders import Loaders
from settings import Settings


@dataclass
class Context:
    db: Database
    settings: Settings
    clock: Clock
    request_id: str
    request: Request | None = None
    response: Response | None = None
    viewer_or_none: Viewer | None = None
    # Live updates: the process's hub, and what a websocket's connection_init sent.
    hub: Hub | None = None
    connection_params: dict[str, object] | None = None
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.viewer_or_none)

    def become(self, viewer: Viewer) -> None:
        """A websocket's viewer, known once its connection_init is authenticated."""
        self.viewer_or_none = viewer
        self.loaders = Loaders(self.db, viewer)
        self.__dict__.pop("caller", None)

    @property
    def viewer(self) -> Viewer:
        if self.viewer_or_none is None:
            # The HTTP layer refuses unauthenticated operations before they run.
            raise DomainError.one(ErrorCode.FORBIDDEN, "a bearer token is required")
        return self.viewer_or_none

    @cached_property
    def policy(self) -> Policy:
        return Policy.from_settings(self.settings)

    @cached_property
    def caller(self) -> Caller:
        """Who acts in this request's mutations, by which clock and rules."""
        return Caller(viewer=self.viewer, clock=self.clock, policy=self.policy)


Info = strawberry.Info[Context, None]
