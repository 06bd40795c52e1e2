"""The webhook rules that need no database: the retry schedule, the address rule, signing."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from domain.webhook_delivery import signature
from domain.webhooks import WebhookRules, address_refusal, new_secret, url_refusal
from settings import Settings

RULES = WebhookRules.from_settings(Settings(_env_file=None))


def test_retries_double_from_a_minute_to_at_most_an_hour() -> None:
    minutes = [RULES.backoff(attempt) / timedelta(minutes=1) for attempt in range(1, 11)]
    assert minutes == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert RULES.backoff(10_000) == timedelta(hours=1)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "0.0.0.0",
        "240.0.0.1",
        "::1",
        "fe80::1%eth0",
        "fc00::1",
        "ff02::1",
        "::ffff:10.0.0.1",
    ],
)
def test_addresses_deliveries_may_not_reach(address: str) -> None:
    assert address_refusal(address, allow_private=False) is not None
    assert address_refusal(address, allow_private=True) is None


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address, allow_private=False) is None


def test_http_only_where_private_targets_are_allowed() -> None:
    assert url_refusal("http://hooks.example.com/", allow_private=False) == "url must be https"
    assert url_refusal("http://hooks.example.com/", allow_private=True) is None
    assert url_refusal("https://hooks.example.com/", allow_private=False) is None


def test_signatures_verify_with_the_reference_library_for_each_secret() -> None:
    old, new = new_secret(), new_secret()
    assert len(base64.b64decode(new.removeprefix("whsec_"))) == 32
    now = datetime.now(UTC)
    keys = [base64.b64decode(s.removeprefix("whsec_")) for s in (new, old)]
    body = b'{"id":"x"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature(keys, "msg_1", int(now.timestamp()), body),
    }
    for secret in (old, new):
        assert Webhook(secret).verify(body, headers) == {"id": "x"}
