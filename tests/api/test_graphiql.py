"""GraphiQL works offline and on a first visit: every file it loads comes from Numbra, and a
token entered on the page runs queries and loads the docs (in a real Chromium)."""

import re
from collections.abc import AsyncIterator, Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Route, sync_playwright

from cli.database import FIRST_TOKEN_NAME
from settings import Settings
from tests.support.databases import IN_CI
from tests.support.graphiql_screen import GraphiQLScreen
from tests.support.processes import Server, run_cli, serving
from web.app import create_app
from web.graphiql import STATIC_DIR

CHROMIUM = Path("/usr/bin/chromium")
HTML = {"Accept": "text/html"}


class _PageParts(HTMLParser):
    """The scripts and stylesheets a page loads, and whether any script is inline."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.inline_code: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if "style" in attributes or any(name.startswith("on") for name in attributes):
            self.inline_code.append(f"<{tag} {attributes}>")
        if tag == "style":
            self.inline_code.append("<style>")
        if tag == "script":
            self._in_script = True
            if attributes.get("src"):
                self.scripts.append(str(attributes["src"]))
        if tag == "link" and attributes.get("rel") == "stylesheet":
            self.stylesheets.append(str(attributes["href"]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_code.append(data)


def _parts(html: str) -> _PageParts:
    parts = _PageParts()
    parts.feed(html)
    return parts


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # The page and its files touch no database.
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path}/unused.db")
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://numbra.test") as client:
        yield client


async def test_the_page_and_every_file_it_loads_come_from_numbra(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers=HTML)

    assert page.status_code == 200
    assert not re.search(r"https?://", page.text, re.IGNORECASE)
    parts = _parts(page.text)
    assert len(parts.scripts) >= 4
    assert len(parts.stylesheets) >= 2
    for url, kind in [(u, "javascript") for u in parts.scripts] + [
        (u, "css") for u in parts.stylesheets
    ]:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        assert kind in asset.headers["content-type"], url
        assert "immutable" in asset.headers["cache-control"], url


async def test_the_page_allows_only_its_own_origin_and_no_framing(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/graphql", headers=HTML)

    policy = dict(
        directive.strip().split(" ", 1)
        for directive in page.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    # GraphiQL's dialogs write one <style>: let in by a nonce made for each page.
    nonce = re.fullmatch(r"'self' 'nonce-([\w-]{20,})'", policy["style-src"])
    assert nonce
    assert f'nonce="{nonce.group(1)}"' in page.text
    again = await client.get("/graphql", headers=HTML)
    assert nonce.group(1) not in again.headers["content-security-policy"]
    assert policy["frame-ancestors"] == "'none'"
    assert all("http" not in sources and "*" not in sources for sources in policy.values())
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert _parts(page.text).inline_code == []


def test_every_vendored_package_carries_its_licence() -> None:
    packages = [path for path in (STATIC_DIR / "graphiql").iterdir() if "@" in path.name]
    assert packages
    for package in packages:
        assert (package / "LICENSE").read_text().startswith("MIT License"), package


# In a real browser, offline: a Numbra server on loopback, and nothing else reachable.


def _readme_first_query(root: Path) -> str:
    match = re.search(r"```graphql\n(.*?)```", (root / "README.md").read_text(), re.DOTALL)
    assert match, "README.md has no graphql example"
    return match.group(1)


@pytest.fixture(scope="module")
def server_and_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    workdir = tmp_path_factory.mktemp("graphiql")
    url = f"sqlite+aiosqlite:///{workdir}/numbra.db"
    token = run_cli(["migrate"], url, workdir).splitlines()[-1]
    with serving(url, 1, workdir) as servers:
        yield servers[0], token


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        reason = f"Chromium is not installed at {CHROMIUM} (`apt-get install chromium`)"
        if IN_CI:
            pytest.fail(reason + "; CI needs it: run `make test` as root", pytrace=False)
        pytest.skip(reason + "; `make test` as root installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def screen(browser: Browser, server_and_token: tuple[Server, str]) -> Iterator[GraphiQLScreen]:
    """GraphiQL in a fresh browser profile that can reach only the Numbra server."""
    server, _token = server_and_token
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    refused: list[str] = []
    problems: list[str] = []

    def only_numbra(route: Route) -> None:
        if route.request.url.startswith(server.base_url + "/"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort("internetdisconnected")

    def note_error(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(message.text)

    context.route("**/*", only_numbra)
    page = context.new_page()
    page.on("console", note_error)
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        yield GraphiQLScreen(page, server.base_url)
        assert refused == [], "the page asked for files from elsewhere"
        assert problems == [], "the browser reported errors (CSP violations among them)"
    finally:
        context.close()


@pytest.mark.slow
def test_a_first_visit_offline_runs_the_readme_query_once_a_token_is_entered(
    screen: GraphiQLScreen,
    server_and_token: tuple[Server, str],
    pytestconfig: pytest.Config,
) -> None:
    _server, token = server_and_token
    screen.open()

    screen.use_token(token)
    screen.type_query(_readme_first_query(pytestconfig.rootpath))
    response = screen.run()
    docs = screen.open_docs()

    artifacts = pytestconfig.rootpath / "tests" / "artifacts"
    artifacts.mkdir(exist_ok=True)
    screen.page.screenshot(path=artifacts / "graphiql-first-visit.png")
    assert "errors" not in response, response
    assert response["data"]["viewer"]["tokenName"] == FIRST_TOKEN_NAME
    assert response["data"]["viewer"]["role"] == "ADMIN"
    assert "Query" in docs
    assert "Mutation" in docs
    # The token stays in this tab only: never in localStorage, so not across restarts.
    assert screen.stored("sessionStorage") == {"numbra:token": token}
    assert not any(token in value for value in screen.stored("localStorage").values())


@pytest.mark.slow
def test_headers_typed_in_graphiql_are_not_kept_in_local_storage(screen: GraphiQLScreen) -> None:
    screen.open()

    screen.type_headers('{"Authorization": "Bearer nbr_typed-by-hand"}')
    screen.type_query("{ typedAfterTheHeaders: viewer { role } }")
    # GraphiQL saves its tabs (query, variables, headers) a moment after each change: once
    # they hold the query edited after the headers, they would hold the headers too.
    screen.page.wait_for_function(
        "() => (localStorage.getItem('graphiql:tabState') || '').includes('typedAfterTheHeaders')"
    )

    assert "nbr_typed-by-hand" not in str(screen.stored("localStorage"))


@pytest.mark.slow
def test_graphiqls_dialogs_open_under_the_content_security_policy(
    screen: GraphiQLScreen,
) -> None:
    screen.open()

    for dialog in ("Open settings dialog", "Open short keys dialog"):
        screen.open_dialog(dialog)
    # The screen fixture fails the test on any error the browser reported.


@pytest.mark.slow
def test_the_editor_is_not_filled_from_the_url(screen: GraphiQLScreen) -> None:
    screen.open("/graphql?q=mutation%7BdeleteEverything%7D&variables=%7B%7D")

    assert "deleteEverything" not in screen.query_text()
