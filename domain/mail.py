"""Notice e-mails: what they say (plain text and HTML), and how they leave (SMTP or the log)."""

import dataclasses
import html
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Protocol

import aiosmtplib

from models import NoticeKind
from settings import Settings

log = logging.getLogger("numbra.mail")


@dataclass(frozen=True)
class NoticeMail:
    kind: NoticeKind
    e164: str
    # Who the notice is about: the organization a number is reserved for, or whose pool
    # holds a locked number.
    organization: str
    pool: str
    expires_at: datetime
    recipients: Sequence[str]
    # Stable for the notice, so a copy sent twice carries the same Message-ID.
    reference: str
    # INTAKE_LIMIT_REACHED: the token's name (`organization` is its organization's).
    token: str = ""


@dataclass(frozen=True)
class _Text:
    subject: str
    lead: str
    steps: list[str]


def _when(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment:%A} {moment.day} {moment:%B %Y, %H:%M} UTC"


def _text(mail: NoticeMail) -> _Text:
    when = _when(mail.expires_at)
    number, org, pool = mail.e164, mail.organization, mail.pool
    if mail.kind is NoticeKind.INTAKE_LIMIT_REACHED:
        # The subject holds no stored text: names go in the body only.
        return _Text(
            subject=f"A token's adds and imports are refused until {when}",
            lead=(
                f"The token {mail.token!r} of {org} was told more often today than the "
                f"daily limit allows that numbers it would add or import are already held "
                f"outside its organization's subtree. Such questions can map which numbers "
                f"other tenants hold; Numbra answered them without saying where. The token "
                f"may not add or import numbers until {when}."
            ),
            steps=[
                "If it is work you expect (a migration, a clean-up): nothing to do; raise "
                "NUMBRA_INTAKE_REFUSALS_PER_DAY if it recurs.",
                "If not: revoke the token, or take mayAddNumbers from its organization.",
            ],
        )
    if mail.kind is NoticeKind.RESERVATION_LAPSING:
        return _Text(
            subject=f"Reservation of {number} for {org} ends {when}",
            lead=(
                f"The phone number {number}, in the pool of {pool}, is reserved for {org} "
                f"until {when}. Then the reservation lapses and the number returns to "
                f"stock in that pool, free for anyone who may use the pool."
            ),
            steps=[
                "To keep it reserved: extend the reservation with a DID Reservation "
                "subscription (its UUID and the end of its paid period).",
                "To use it: assign it to a subscription before then.",
                "To let it go: do nothing, or release it now.",
            ],
        )
    if mail.kind is NoticeKind.SERVICE_ENDING:
        return _Text(
            subject=f"Service on {number} for {org} ends {when}",
            lead=(
                f"The phone number {number} of {org} is paid until {when}, and its term "
                f"will not renew (it was cancelled, or no billing cycles are left). Then the "
                f"service ends and the number is held for {org} for a while before it is "
                f"released."
            ),
            steps=[
                "To keep it: restore the service (if it was cancelled), add billing cycles, "
                "or renew it before then.",
                "To let it go: do nothing.",
            ],
        )
    if mail.kind is NoticeKind.LOCK_LAPSING:
        return _Text(
            subject=f"Lock on {number} in the pool of {pool} ends {when}",
            lead=(
                f"The phone number {number}, in the pool of {pool}, is locked until {when}. "
                f"Then the lock lapses and the number becomes AVAILABLE in that pool."
            ),
            steps=[
                "If it must stay out of use: delete it before then (ported out, "
                "returned to vendor or faulty), or lock it again once it has lapsed.",
                "If it may go back into stock: do nothing, or unlock it now.",
            ],
        )
    return _Text(
        subject=f"Lock on {number} in the pool of {pool} lapsed",
        lead=(
            f"The lock on the phone number {number}, in the pool of {pool}, lapsed on "
            f"{when}. The number is AVAILABLE again in that pool."
        ),
        steps=[
            "If that is right: nothing to do.",
            "If it must stay out of use: lock it again, or delete it.",
        ],
    )


class MailError(Exception):
    """Sending failed. Permanent failures (the server refuses the message) are not retried."""

    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


FOOTER = "This is an automatic notice from Numbra, sent once for this end date."
OWN_FOOTER = "This is an automatic message from Numbra."
# Runs of white space, line and paragraph separators: one space in a line of text.
_SPACES = re.compile(r"[\s\u2028\u2029]+")
# Controls, separators of lines and paragraphs, surrogates (none is valid in a mail).
_BREAKING = frozenset({"Cc", "Zl", "Zp", "Cs"})


def one_line(text: str) -> str:
    """`text` as one line: no control character, line break or separator, which in a
    header would end it (and start another) or make the message unsendable.

    Stored text may hold them (names from before they were refused): they become spaces.
    """
    spaced = "".join(" " if unicodedata.category(char) in _BREAKING else char for char in text)
    return _SPACES.sub(" ", spaced).strip()


def mail_address(text: str) -> Address | None:
    """A stored e-mail address as a mail takes it; None if a mail cannot carry it."""
    if one_line(text) != text.strip():
        return None
    try:
        return Address(addr_spec=text.strip())
    # The header parser's refusals, and what it raises on some broken input.
    except (ValueError, IndexError, MessageError):
        return None


def compose(mail: NoticeMail, sender: str, now: datetime) -> EmailMessage:
    """The notice as a mail. No text the database holds makes it fail: every text that
    reaches a header is made one line first, and addresses are parsed as addresses.

    Raises a permanent MailError if no recipient is an address a mail can carry.
    """
    recipients = [address for address in map(mail_address, mail.recipients) if address]
    if not recipients:
        shown = ", ".join(repr(one_line(text)) for text in mail.recipients)
        raise MailError(f"no address a mail can be sent to: {shown}", permanent=True)
    mail = dataclasses.replace(
        mail,
        e164=one_line(mail.e164),
        organization=one_line(mail.organization),
        pool=one_line(mail.pool),
    )
    return _message(_text(mail), recipients, f"notice-{mail.reference}", sender, now, FOOTER)


def compose_text(
    *,
    subject: str,
    lead: str,
    steps: list[str],
    recipients: Sequence[str],
    reference: str,
    sender: str,
    now: datetime,
) -> EmailMessage:
    """A mail of Numbra's own that is not a number's notice (a webhook endpoint disabled),
    laid out as the notices are. Raises a permanent MailError as `compose` does."""
    addresses = [address for address in map(mail_address, recipients) if address]
    if not addresses:
        shown = ", ".join(repr(one_line(text)) for text in recipients)
        raise MailError(f"no address a mail can be sent to: {shown}", permanent=True)
    text = _Text(one_line(subject), lead, steps)
    return _message(text, addresses, reference, sender, now, OWN_FOOTER)


def _message(
    text: _Text,
    recipients: list[Address],
    reference: str,
    sender: str,
    now: datetime,
    footer: str,
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = text.subject
    message["From"] = one_line(sender)
    message["To"] = recipients
    message["Date"] = format_datetime(now.astimezone(UTC))
    domain = one_line(sender).rpartition("@")[2] or "numbra"
    message["Message-ID"] = one_line(f"<{reference}@{domain}>")
    message["Auto-Submitted"] = "auto-generated"
    steps = "\n".join(f"- {step}" for step in text.steps)
    message.set_content(f"Hello,\n\n{text.lead}\n\nWhat to do:\n{steps}\n\n{footer}\n")
    items = "".join(f"<li>{html.escape(step)}</li>" for step in text.steps)
    message.add_alternative(
        f"<html><body><p>Hello,</p><p>{html.escape(text.lead)}</p>"
        f"<p>What to do:</p><ul>{items}</ul><p><small>{html.escape(footer)}</small></p>"
        "</body></html>",
        subtype="html",
    )
    return message


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> list[str]:
        """Send; return the recipients the server refused while taking the rest."""
        ...


class SmtpMailer:
    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host
        self._host = settings.smtp_host
        self._port = settings.smtp_port
        self._user = settings.smtp_user
        self._password = settings.smtp_password
        self._starttls = settings.smtp_starttls
        self._timeout = settings.smtp_timeout_seconds

    async def send(self, message: EmailMessage) -> list[str]:
        try:
            refused, _ = await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                username=self._user,
                password=self._password.get_secret_value() if self._password else None,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refusal.code for refusal in exc.recipients]
            raise MailError(str(exc), permanent=all(code >= 500 for code in codes)) from exc
        except aiosmtplib.SMTPDataError as exc:
            raise MailError(f"{exc.code} {exc.message}", permanent=exc.code >= 500) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # Sender, login and greeting refusals are the configuration's: retry after a fix.
            raise MailError(f"{exc.code} {exc.message}", permanent=False) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"{type(exc).__name__}: {exc}", permanent=False) from exc
        return [f"{address}: {reply.code} {reply.message}" for address, reply in refused.items()]


class LogMailer:
    """The sink when no SMTP host is set: each mail is written to the log."""

    async def send(self, message: EmailMessage) -> list[str]:
        body = message.get_body(preferencelist=("plain",))
        content = body.get_content() if isinstance(body, EmailMessage) else ""
        log.info(
            "mail (no SMTP host set) to %s: %s\n%s", message["To"], message["Subject"], content
        )
        return []


def mailer_from_settings(settings: Settings) -> Mailer:
    return SmtpMailer(settings) if settings.smtp_host else LogMailer()
