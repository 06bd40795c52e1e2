"""GraphiQL served whole by Numbra: its page and its files, so it works without internet access.

The files are vendored npm packages (web/static/graphiql/, README there), each in a
folder named by its version; the page's own script and style carry a hash of their
content in their URLs. Every URL is therefore versioned and cached for a year.

The page allows nothing but this origin (Content-Security-Policy), no framing, and no
inline script. The one inline style GraphiQL writes (its dialogs' scroll lock) carries a
nonce made for each response. The token a user enters lives in the tab's sessionStorage only, and
GraphiQL persists no headers (static/graphiql/numbra-graphiql.js).
"""

import os
import secrets
from hashlib import sha256
from html import escape
from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).with_name("static")
STATIC_URL = "/static"

# In the order they must load: GraphiQL's bundle needs React; the explorer needs GraphiQL.
_VENDORED_STYLES = (
    "graphiql/graphiql@3.9.0/graphiql.min.css",
    "graphiql/plugin-explorer@3.2.6/style.css",
)
_VENDORED_SCRIPTS = (
    "graphiql/react@18.3.1/react.production.min.js",
    "graphiql/react-dom@18.3.1/react-dom.production.min.js",
    "graphiql/graphiql@3.9.0/graphiql.min.js",
    "graphiql/plugin-explorer@3.2.6/index.umd.js",
)
_OWN_STYLE = "graphiql/numbra-graphiql.css"
_OWN_SCRIPT = "graphiql/numbra-graphiql.js"

_CONTENT_SECURITY_POLICY = Template(
    "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self' 'nonce-${nonce}'",
            # GraphiQL's fonts and icons are inlined in its stylesheet.
            "font-src data:",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
)
_PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"


def _versioned(relative: str) -> str:
    """The URL of one of our own files, changing whenever its content does."""
    digest = sha256((STATIC_DIR / relative).read_bytes()).hexdigest()[:16]
    return f"{STATIC_URL}/{relative}?v={digest}"


def _page() -> Template:
    styles = [f"{STATIC_URL}/{path}" for path in _VENDORED_STYLES] + [_versioned(_OWN_STYLE)]
    links = "\n".join(f'    <link rel="stylesheet" href="{escape(url)}">' for url in styles)
    vendored = "\n".join(
        f'    <script defer src="{escape(STATIC_URL)}/{escape(path)}"></script>'
        for path in _VENDORED_SCRIPTS
    )
    # Our script hands the nonce on to GraphiQL (script elements keep it from the DOM).
    own = f'    <script defer src="{escape(_versioned(_OWN_SCRIPT))}" nonce="${{nonce}}"></script>'
    return Template(f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Numbra GraphiQL</title>
    <link rel="icon" href="data:,">
{links}
{vendored}
{own}
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL…</div>
  </body>
</html>
""")


# Built once: the files it names do not change while the process runs.
_PAGE = _page()


def page() -> Response:
    nonce = secrets.token_urlsafe(18)
    return HTMLResponse(
        _PAGE.substitute(nonce=nonce),
        headers={
            "Content-Security-Policy": _CONTENT_SECURITY_POLICY.substitute(nonce=nonce),
            **_PAGE_HEADERS,
        },
    )


class _VersionedFiles(StaticFiles):
    """Static files whose URLs name their version, so browsers may keep them for good."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = ASSET_CACHE_CONTROL
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def static_mount() -> Mount:
    return Mount(STATIC_URL, app=_VersionedFiles(directory=STATIC_DIR), name="static")
