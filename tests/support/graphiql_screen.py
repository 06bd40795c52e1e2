"""The GraphiQL screen as a person uses it, for Playwright tests: what they click and read."""

import json
from typing import Any

from playwright.sync_api import Page, expect

# GraphiQL's own markup (graphiql 3.9); our token field takes the place of its logo.
_READY = ".graphiql-container .graphiql-session"
_QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
_HEADERS_TAB = ".graphiql-editor-tools button:has-text('Headers')"
_HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
_RESPONSE_EDITOR = ".result-window .CodeMirror"
_TOKEN_FIELD = "form.numbra-token input[name=token]"
_USE_TOKEN = "form.numbra-token button[type=submit]"
_RUN = ".graphiql-execute-button"
_DOCS_BUTTON = "button[aria-label='Show Documentation Explorer']"
_DOCS = ".graphiql-doc-explorer"
LOAD_WITHIN_MS = 30_000


class GraphiQLScreen:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url

    def open(self, path_and_query: str = "/graphql") -> None:
        self.page.goto(self.base_url + path_and_query)
        self.page.wait_for_selector(_READY, timeout=LOAD_WITHIN_MS)

    def use_token(self, token: str) -> None:
        self.page.fill(_TOKEN_FIELD, token)
        self.page.click(_USE_TOKEN)

    def query_text(self) -> str:
        return self._editor_text(_QUERY_EDITOR)

    def type_query(self, text: str) -> None:
        """Replace the query as a paste would (typing would let the editor close brackets)."""
        self.page.click(_QUERY_EDITOR)
        self.page.keyboard.press("Control+A")
        self.page.keyboard.insert_text(text)
        assert self.query_text() == text

    def type_headers(self, text: str) -> None:
        """Put TEXT (JSON) in the Headers pane, as a user pasting a header would."""
        self.page.click(_HEADERS_TAB)
        self.page.click(_HEADERS_EDITOR)
        self.page.keyboard.press("Control+A")
        self.page.keyboard.insert_text(text)
        assert self._editor_text(_HEADERS_EDITOR) == text

    def run(self) -> dict[str, Any]:
        """Run the query and return the response the result pane shows."""
        self.page.click(_RUN)
        self.page.wait_for_function(
            "selector => document.querySelector(selector).CodeMirror.getValue() !== ''",
            arg=_RESPONSE_EDITOR,
            timeout=LOAD_WITHIN_MS,
        )
        response: dict[str, Any] = json.loads(self._editor_text(_RESPONSE_EDITOR))
        return response

    def open_docs(self) -> str:
        """Open the Docs pane once the schema is there; return the text it shows."""
        self.page.click(_DOCS_BUTTON)
        docs = self.page.locator(_DOCS)
        expect(docs.get_by_text("Root Types")).to_be_visible(timeout=LOAD_WITHIN_MS)
        return docs.inner_text()

    def open_dialog(self, label: str) -> None:
        """Open one of the sidebar's dialogs (its button's label), then close it again."""
        self.page.click(f"button[aria-label={json.dumps(label)}]")
        dialog = self.page.get_by_role("dialog")
        expect(dialog).to_be_visible(timeout=LOAD_WITHIN_MS)
        self.page.keyboard.press("Escape")
        expect(dialog).to_be_hidden(timeout=LOAD_WITHIN_MS)

    def stored(self, storage: str) -> dict[str, str]:
        """The tab's localStorage or sessionStorage, as key -> value."""
        items: dict[str, str] = self.page.evaluate(
            "storage => Object.fromEntries(Object.entries(window[storage]))", storage
        )
        return items

    def _editor_text(self, selector: str) -> str:
        text: str = self.page.evaluate(
            "selector => document.querySelector(selector).CodeMirror.getValue()", selector
        )
        return text
