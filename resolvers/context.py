"""The per-request context every resolver receives: a typed dataclass, never a dict."""

from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from domain.access import Viewer
from domain.clock import Clock
from domain.errors import DomainError, ErrorCode
from models.database import Database
from resolvers.loaders import Loaders
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
    loaders: Loaders = field(init=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.db, self.viewer_or_none)

    @property
    def viewer(self) -> Viewer:
        if self.viewer_or_none is None:
            # The HTTP layer refuses unauthenticated operations before they run.
            raise DomainError.one(ErrorCode.FORBIDDEN, "a bearer token is required")
        return self.viewer_or_none
