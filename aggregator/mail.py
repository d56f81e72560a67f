"""The digest as a MIME message, and sending it over SMTP: the digest's one I/O edge.

    build_message   HTML + text -> a complete multipart/alternative EmailMessage (pure)
    send            one message -> an SMTP server (smtplib), per recipient or as Bcc

What this module does *not* do: decide what goes into the digest, render it
(digest.py), or remember what was sent (digest.py records that in the store).
smtplib's and ssl's exceptions are translated here, once, into `SendError`,
whose message says what went wrong and what to change.

The headers follow what mailing-list services expect of an imported message:
RFC 5322 Date and Message-ID, a List-Id (RFC 2919), List-Unsubscribe (RFC 2369)
and, for an https address, List-Unsubscribe-Post (RFC 8058 one-click).
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, parseaddr

from .errors import AggregatorError
from .models import SmtpSettings

__all__ = [
    "SendError",
    "SendReport",
    "build_message",
    "message_bytes",
    "send",
    "smtp_password",
    "unsubscribe_headers",
]


class SendError(AggregatorError):
    """The digest could not be sent: the SMTP server was unreachable, refused us or failed.

    `accepted` lists the recipients who did get the message before the failure
    (only ever non-empty when recipients are sent to one by one).
    """

    def __init__(self, message: str, *, accepted: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.accepted = tuple(accepted)


@dataclass(frozen=True)
class SendReport:
    """Who the server accepted the message for, and who it refused (address -> reply)."""

    accepted: tuple[str, ...]
    refused: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- message


def unsubscribe_headers(unsubscribe: str | None) -> dict[str, str]:
    """List-Unsubscribe (RFC 2369) and, for https, List-Unsubscribe-Post (RFC 8058).

    `unsubscribe` is an http(s) URL, a mailto: URI or a bare address.  RFC 8058
    one-click needs an HTTPS URI (mail providers POST to it), so a mailto: or
    plain-http address gets List-Unsubscribe only.
    """
    if not unsubscribe:
        return {}
    target = unsubscribe.strip()
    if "@" in target and ":" not in target:
        target = f"mailto:{target}"
    headers = {"List-Unsubscribe": f"<{target}>"}
    if target.lower().startswith("https://"):
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return headers


def build_message(
    *,
    subject: str,
    sender: str,
    to: str,
    html: str,
    text: str,
    date: datetime,
    message_id: str,
    unsubscribe: str | None = None,
    list_id: str | None = None,
) -> EmailMessage:
    """A complete multipart/alternative message, UTF-8, ready to send or save as .eml.

    `sender` and `to` are header values ("Name <addr>" or a group such as
    "undisclosed-recipients:;"); non-ASCII names are encoded (RFC 2047) by the
    email package.  The text part comes first: clients show the last part they
    can display, so HTML wins where it is supported.
    """
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = to
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["MIME-Version"] = "1.0"
    if list_id:
        message["List-Id"] = list_id
    for name, value in unsubscribe_headers(unsubscribe).items():
        message[name] = value
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: autoresponders stay quiet
    message.set_content(text, subtype="plain", charset="utf-8", cte="quoted-printable")
    message.add_alternative(html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message


def message_bytes(message: EmailMessage) -> bytes:
    """The message as it goes on the wire and into the .eml file (CRLF line ends)."""
    return message.as_bytes(policy=SMTP_POLICY)


def envelope_address(header_value: str) -> str:
    """The bare address in a From/To header value ("Siân <a@b>" -> "a@b")."""
    return parseaddr(header_value)[1]


# --------------------------------------------------------------------------- sending


def smtp_password(smtp: SmtpSettings, environ: Mapping[str, str] = os.environ) -> str | None:
    """The password from the environment variable `password_env` names (never from the file)."""
    if smtp.password_env is None:
        return None
    password = environ.get(smtp.password_env)
    if not password:
        raise SendError(
            f"The environment variable {smtp.password_env} is not set, but "
            "settings.digest.smtp.password_env in feeds.yaml says the SMTP password is in it. "
            f"Set it (e.g. `export {smtp.password_env}=...`) where the aggregator runs."
        )
    return password


def send(
    message: EmailMessage,
    smtp: SmtpSettings,
    recipients: Sequence[str],
    *,
    individual: bool = True,
    ssl_context: ssl.SSLContext | None = None,
    environ: Mapping[str, str] = os.environ,
) -> SendReport:
    """Send `message` to `recipients` over one SMTP connection.

    With `individual`, each recipient gets their own copy with their own address
    in To (nobody sees the list); otherwise one copy goes to everyone as Bcc
    (the To header is left as it is and the addresses are only in the envelope).
    `ssl_context` replaces the system's certificate checks, for tests and for
    servers with a private CA.  A recipient the server refuses is reported in
    the result; anything that stops the whole send raises SendError.
    """
    if not recipients:
        raise SendError(
            "There is nobody to send the digest to: add addresses under "
            "settings.digest.to in feeds.yaml."
        )
    password = smtp_password(smtp, environ)
    where = f"{smtp.host}:{smtp.port}"
    from_addr = envelope_address(str(message["From"]))
    accepted: list[str] = []
    refused: dict[str, str] = {}
    try:
        with _connect(smtp, ssl_context) as client:
            if smtp.username:
                if password is None:
                    raise SendError(
                        f"settings.digest.smtp has username {smtp.username!r} but no "
                        "password_env; name the environment variable that holds the password."
                    )
                client.login(smtp.username, password)
            batches = [[r] for r in recipients] if individual else [list(recipients)]
            for batch in batches:
                copy = message
                if individual:
                    copy = _readdressed(message, batch[0])
                try:
                    failed = client.sendmail(from_addr, batch, message_bytes(copy))
                except smtplib.SMTPRecipientsRefused as exc:
                    failed = exc.recipients
                for address in batch:
                    if address in failed:
                        code, reply = failed[address]
                        refused[address] = f"{code} {_reply(reply)}"
                    else:
                        accepted.append(address)
    except SendError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(
            f"The mail server {where} refused the username {smtp.username!r} and its password "
            f"({exc.smtp_code} {_reply(exc.smtp_error)}). Check settings.digest.smtp.username "
            f"in feeds.yaml and the password in ${smtp.password_env}.",
            accepted=accepted,
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise SendError(
            f"The mail server {where} does not support what we asked for ({exc}). If it does "
            "not offer STARTTLS, use `security: ssl` (usually port 465); if it offers no login, "
            "remove `username`.",
            accepted=accepted,
        ) from exc
    except smtplib.SMTPSenderRefused as exc:
        raise SendError(
            f"The mail server {where} refused the sender address {from_addr} "
            f"({exc.smtp_code} {_reply(exc.smtp_error)}). Use a `from:` address under "
            "settings.digest that this server lets you send as.",
            accepted=accepted,
        ) from exc
    except ssl.SSLCertVerificationError as exc:
        raise SendError(
            f"Could not verify the mail server's certificate at {where}: {exc.verify_message}. "
            "Check settings.digest.smtp.host is the name on the server's certificate.",
            accepted=accepted,
        ) from exc
    except ssl.SSLError as exc:
        raise SendError(
            f"Could not set up an encrypted connection to {where}: {exc.reason or exc}. Check "
            "settings.digest.smtp.security: `ssl` is for port 465, `starttls` for 587.",
            accepted=accepted,
        ) from exc
    except smtplib.SMTPResponseException as exc:
        raise SendError(
            f"The mail server {where} refused the digest ({exc.smtp_code} "
            f"{_reply(exc.smtp_error)}).",
            accepted=accepted,
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, socket.timeout | TimeoutError):
            reason = f"no answer within {smtp.timeout:g} seconds"
        raise SendError(
            f"Could not reach the mail server at {where}: {reason or type(exc).__name__}. "
            "Check settings.digest.smtp host, port and security in feeds.yaml, and that the "
            "server is running.",
            accepted=accepted,
        ) from exc
    if not accepted:
        detail = "; ".join(f"{a}: {r}" for a, r in refused.items())
        raise SendError(f"The mail server {where} refused every recipient ({detail}).")
    return SendReport(tuple(accepted), refused)


def _connect(smtp: SmtpSettings, ssl_context: ssl.SSLContext | None) -> smtplib.SMTP:
    context = ssl_context or ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout)
    try:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
    except BaseException:
        client.close()
        raise
    return client


def _readdressed(message: EmailMessage, recipient: str) -> EmailMessage:
    copy = deepcopy(message)
    copy.replace_header("To", str(Address(addr_spec=recipient)))
    return copy


def _reply(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return " ".join(text.split())
