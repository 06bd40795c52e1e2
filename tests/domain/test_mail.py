"""A notice's mail is composed from stored text, whatever that text holds."""

import email
import email.policy
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.mail import MailError, NoticeMail, compose, mail_address
from models import NoticeKind

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HEADERS = [
    "Subject",
    "From",
    "To",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
]
# Any text a row may hold (legacy rows included): line breaks of every kind, controls, symbols.
STORED = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00")
    | st.sampled_from("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029\t\x1b:;<>,\"'"),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(NoticeKind),
    organization=STORED,
    pool=STORED,
    e164=STORED,
    recipients=st.lists(STORED | st.emails(), min_size=1, max_size=3),
    expires_at=st.datetimes(timezones=st.just(UTC)),
)
def test_any_stored_text_makes_a_mail_with_exactly_its_own_headers(
    kind: NoticeKind,
    organization: str,
    pool: str,
    e164: str,
    recipients: list[str],
    expires_at: datetime,
) -> None:
    mail = NoticeMail(kind, e164, organization, pool, expires_at, recipients, "1.2.reference")

    if not any(mail_address(text) for text in recipients):
        with pytest.raises(MailError) as refused:
            compose(mail, "numbra@operator.test", NOW)
        assert refused.value.permanent
        return
    message = compose(mail, "numbra@operator.test", NOW)
    sent = message.as_bytes(policy=email.policy.SMTP)

    received = email.message_from_bytes(sent, policy=email.policy.default)
    assert sorted(received.keys()) == sorted(HEADERS)
    valid = [text.strip() for text in recipients if mail_address(text)]
    assert [a.addr_spec for a in received["To"].addresses] == [str(mail_address(t)) for t in valid]
    subject = str(received["Subject"])
    assert not any(char in subject for char in "\r\n\x0b\x0c\x85\u2028\u2029")
