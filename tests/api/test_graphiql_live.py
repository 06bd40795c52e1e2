"""GraphiQL runs a subscription: the page's fetcher opens the websocket with the token
entered in the Token field, and shows each event as it is committed (a real Chromium)."""

import json
import time

import httpx
import pytest

from tests.api.test_graphiql import browser, screen, server_and_token
from tests.support.graphiql_screen import GraphiQLScreen
from tests.support.processes import Server

__all__ = ["browser", "screen", "server_and_token"]

TRIES = 30
SUBSCRIPTION = "subscription { numberEvents { action e164 } }"
ADD = """
mutation ($n: [String!]!) {
  addNumbers(input: {numbers: $n, vendor: "V", country: "SG", sku: "sku"}) {
    userErrors { code }
  }
}"""
RESPONSE = ".result-window .CodeMirror"


@pytest.mark.slow
def test_graphiql_shows_events_of_a_subscription_as_they_are_committed(
    screen: GraphiQLScreen, server_and_token: tuple[Server, str]
) -> None:
    server, token = server_and_token
    screen.open()
    screen.use_token(token)
    screen.type_query(SUBSCRIPTION)
    screen.page.click(".graphiql-execute-button")
    shown = ""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        # A subscribe message has no answer of its own: add numbers until one is shown.
        for attempt in range(TRIES):
            added = client.post(
                "/graphql",
                json={"query": ADD, "variables": {"n": [f"+6568{attempt:06d}"]}},
                headers={"Authorization": f"Bearer {token}"},
            ).json()
            assert added["data"]["addNumbers"]["userErrors"] == [], added
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline and not shown:
                shown = screen.page.evaluate(
                    "selector => document.querySelector(selector).CodeMirror.getValue()",
                    RESPONSE,
                )
                screen.page.wait_for_timeout(50)
            if shown:
                break
    assert shown, "no event was shown"
    answer = json.loads(shown)
    assert answer.get("data"), answer
    event = answer["data"]["numberEvents"]
    assert event["action"] == "ADDED"
    assert event["e164"].startswith("+6568")
