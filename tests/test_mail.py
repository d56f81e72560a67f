"""Sending the digest to a real SMTP server on 127.0.0.1 (aiosmtpd): plain, STARTTLS and
implicit TLS with a certificate made here, login, refusals, at-most-once per date."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from dataclasses import replace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_digest import DAY, MORNING, fill_busy_day, make_config, run

from aggregator import digest as dg
from aggregator import mail
from aggregator.errors import ConfigError
from aggregator.mail import SendError
from aggregator.models import SmtpSettings
from aggregator.store import Store

RECIPIENTS = ("ann@supporters.example", "bryn@supporters.example", "cerys@supporters.example")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Recorder:
    """An aiosmtpd handler that keeps every envelope; refuses addresses it is told to."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.envelopes = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self):
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)
            for e in self.envelopes
        ]


@pytest.fixture
def smtp_server():
    """Start aiosmtpd on a free loopback port; yields (start, handler) so tests pick options."""
    started = []

    def start(handler=None, **kwargs):
        handler = handler or Recorder()
        controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
        controller.start()
        started.append(controller)
        return controller, handler

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file, client context)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    client = ssl.create_default_context(cafile=str(cert_file))
    return cert_file, key_file, client


def server_context(certificate) -> ssl.SSLContext:
    cert_file, key_file, _ = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


def sending_config(tmp_path, port, **smtp_options):
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none", timeout=5, **smtp_options)
    return make_config(
        tmp_path,
        to=RECIPIENTS,
        smtp=smtp,
        unsubscribe="https://campaign.example/unsubscribe",
    )


@pytest.fixture
def busy(tmp_path):
    """A store holding test_digest's busy day (9 posts from 2 campaigners)."""
    config = make_config(tmp_path)
    with Store.open(config.settings.database) as store:
        store.sync_feeds(config.feeds())
        fill_busy_day(store)
        yield store


# --------------------------------------------------------------------------- delivery


def test_the_digest_arrives_with_its_headers_both_parts_and_utf8(tmp_path, smtp_server, busy):
    controller, handler = smtp_server()
    config = sending_config(tmp_path, controller.port)
    outcome = run(config, busy, send=True)
    assert outcome.status == "sent" and outcome.exit_code == 0
    assert outcome.recipients == RECIPIENTS
    assert "Sent it to 3 recipients (one by one) via 127.0.0.1." in outcome.message
    # One envelope per recipient, each addressed to them alone.
    assert [e.rcpt_tos for e in handler.envelopes] == [[r] for r in RECIPIENTS]
    assert {e.mail_from for e in handler.envelopes} == {"digest@campaign.example"}
    messages = handler.messages()
    assert [m["To"] for m in messages] == list(RECIPIENTS)
    message = messages[0]
    assert message["Subject"] == "Save our NHS: Tuesday 24 November 2026"
    assert message["From"].addresses[0].display_name == "Siân's digest"
    assert message["List-Unsubscribe"] == "<https://campaign.example/unsubscribe>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"] and message["Date"].datetime == MORNING
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Siân Evans 🏥" in plain and "Siân Evans 🏥" in html
    assert "solidarity ✊" in plain and "solidarity ✊" in html
    assert "<table" in html and "<table" not in plain
    # What was sent is what was saved for mailing-list services.
    eml = config.settings.output / "digest" / f"{DAY.isoformat()}.eml"
    saved = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert saved["Message-ID"] == message["Message-ID"]


def test_bcc_mode_sends_one_copy_without_showing_the_list(tmp_path, smtp_server, busy):
    controller, handler = smtp_server()
    config = sending_config(tmp_path, controller.port)
    config = replace(
        config,
        settings=replace(config.settings, digest=replace(config.settings.digest, individual=False)),
    )
    outcome = run(config, busy, send=True)
    assert "(as Bcc)" in outcome.message
    [envelope] = handler.envelopes
    assert envelope.rcpt_tos == list(RECIPIENTS)
    [message] = handler.messages()
    assert message["To"] == "undisclosed-recipients:;"
    assert "Bcc" not in message
    assert not any(r.encode() in envelope.original_content for r in RECIPIENTS)


def test_a_date_is_sent_only_once_and_force_sends_again(tmp_path, smtp_server, busy):
    controller, handler = smtp_server()
    config = sending_config(tmp_path, controller.port)
    first = run(config, busy, send=True)
    assert len(handler.envelopes) == 3
    again = run(config, busy, send=True, now=MORNING + dt.timedelta(hours=2))
    assert again.status == "already_sent" and again.exit_code == 0
    assert "already sent on 25 Nov 2026 at 07:00 to 3 recipients" in again.message
    assert "--force" in again.message
    assert len(handler.envelopes) == 3
    forced = run(config, busy, send=True, force=True, now=MORNING + dt.timedelta(hours=3))
    assert forced.status == "sent"
    assert len(handler.envelopes) == 6
    ids = {m["Message-ID"] for m in handler.messages()}
    assert len(ids) == 2  # the resend is a new message
    [record] = [r for r in dg.digest_records(busy) if r.day == DAY]
    assert record.recipients == RECIPIENTS and first.status == "sent"
    row = busy.db.table("digests").get(DAY.isoformat())
    assert row["send_count"] == 2


def test_starttls_with_a_trusted_certificate(tmp_path, smtp_server, busy, certificate):
    controller, handler = smtp_server(
        tls_context=server_context(certificate), require_starttls=True
    )
    config = sending_config(tmp_path, controller.port)
    smtp = replace(config.settings.digest.smtp, security="starttls")
    config = replace(
        config,
        settings=replace(config.settings, digest=replace(config.settings.digest, smtp=smtp)),
    )
    outcome = run(config, busy, send=True, ssl_context=certificate[2])
    assert outcome.status == "sent"
    assert len(handler.envelopes) == 3


def test_starttls_refuses_a_certificate_it_cannot_verify(tmp_path, smtp_server, busy, certificate):
    controller, handler = smtp_server(
        tls_context=server_context(certificate), require_starttls=True
    )
    smtp = SmtpSettings(host="127.0.0.1", port=controller.port, security="starttls", timeout=5)
    message = mail.build_message(
        subject="s",
        sender="a@campaign.example",
        to="b@x.example",
        html="<p>h</p>",
        text="t",
        date=MORNING,
        message_id="<1@campaign.example>",
    )
    with pytest.raises(SendError, match="Could not verify the mail server's certificate"):
        mail.send(message, smtp, ["b@x.example"])  # the system's trust store
    assert handler.envelopes == []


def test_implicit_tls(tmp_path, smtp_server, busy, certificate):
    controller, handler = smtp_server(ssl_context=server_context(certificate))
    smtp = SmtpSettings(host="127.0.0.1", port=controller.port, security="ssl", timeout=5)
    message = mail.build_message(
        subject="Siân ✊",
        sender="Siân <a@campaign.example>",
        to="b@x.example",
        html="<p>h</p>",
        text="t",
        date=MORNING,
        message_id="<1@campaign.example>",
    )
    report = mail.send(message, smtp, ["b@x.example"], ssl_context=certificate[2])
    assert report.accepted == ("b@x.example",)
    assert handler.messages()[0]["Subject"] == "Siân ✊"


# --------------------------------------------------------------------------- login


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b"organiser" and auth_data.password == b"correct horse"
    return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself


def auth_server(smtp_server):
    return smtp_server(authenticator=authenticator, auth_require_tls=False)


def test_login_with_the_password_from_the_environment(tmp_path, smtp_server, busy, monkeypatch):
    controller, handler = auth_server(smtp_server)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "correct horse")
    config = sending_config(
        tmp_path, controller.port, username="organiser", password_env="DIGEST_SMTP_PASSWORD"
    )
    assert run(config, busy, send=True).status == "sent"
    assert len(handler.envelopes) == 3


def test_a_wrong_password_is_a_clear_error_and_nothing_is_recorded_as_sent(
    tmp_path, smtp_server, busy, monkeypatch
):
    controller, handler = auth_server(smtp_server)
    monkeypatch.setenv("DIGEST_SMTP_PASSWORD", "Tr0ub4dor&3")
    config = sending_config(
        tmp_path, controller.port, username="organiser", password_env="DIGEST_SMTP_PASSWORD"
    )
    with pytest.raises(SendError) as caught:
        run(config, busy, send=True)
    text = str(caught.value)
    assert "refused the username 'organiser' and its password (535" in text
    assert "$DIGEST_SMTP_PASSWORD" in text
    assert "run `aggregator digest --date 2026-11-24 --send` to try again" in text
    assert "Tr0ub4dor" not in text  # the password is never shown
    assert handler.envelopes == []
    assert (config.settings.output / "digest" / "2026-11-24.eml").is_file()
    [record] = dg.digest_records(busy)
    assert record.sent_at is None


def test_a_missing_password_variable_is_a_clear_error(tmp_path, smtp_server, busy, monkeypatch):
    controller, _ = auth_server(smtp_server)
    monkeypatch.delenv("DIGEST_SMTP_PASSWORD", raising=False)
    config = sending_config(
        tmp_path, controller.port, username="organiser", password_env="DIGEST_SMTP_PASSWORD"
    )
    with pytest.raises(SendError, match="environment variable DIGEST_SMTP_PASSWORD is not set"):
        run(config, busy, send=True)


# --------------------------------------------------------------------------- failures


def test_smtp_down_is_a_clear_error_and_the_files_stay_for_a_retry(tmp_path, smtp_server, busy):
    port = free_port()  # nothing listens here
    config = sending_config(tmp_path, port)
    with pytest.raises(SendError) as caught:
        run(config, busy, send=True)
    text = str(caught.value)
    assert f"Could not reach the mail server at 127.0.0.1:{port}" in text
    assert "The files are written in" in text
    assert caught.value.exit_code != 0
    folder = config.settings.output / "digest"
    for name in ("2026-11-24.html", "2026-11-24.txt", "2026-11-24.eml", "index.html"):
        assert (folder / name).is_file()
    # The server comes back: a plain rerun sends it (it was never recorded as sent).
    controller, handler = smtp_server(handler=None)
    config = sending_config(tmp_path, controller.port)
    assert run(config, busy, send=True).status == "sent"
    assert len(handler.envelopes) == 3


def test_a_refused_recipient_is_reported_and_the_others_still_get_it(tmp_path, smtp_server, busy):
    controller, handler = smtp_server(handler=Recorder(refuse=("bryn@supporters.example",)))
    config = sending_config(tmp_path, controller.port)
    outcome = run(config, busy, send=True)
    assert outcome.status == "partly_sent" and outcome.exit_code == 1
    assert outcome.recipients == ("ann@supporters.example", "cerys@supporters.example")
    assert outcome.refused == ("bryn@supporters.example",)
    assert "refused: bryn@supporters.example (550 5.1.1 No such mailbox here)" in outcome.message
    assert len(handler.envelopes) == 2


def test_sending_without_smtp_settings_names_what_is_missing(tmp_path, busy):
    config = make_config(tmp_path)  # a digest section, but no smtp: and no to:
    with pytest.raises(ConfigError) as caught:
        run(config, busy, send=True)
    text = str(caught.value)
    assert "needs smtp:" in text and "needs to:" in text
    assert str(config.path) in text


def test_unsubscribe_headers_follow_rfc_8058():
    assert mail.unsubscribe_headers(None) == {}
    assert mail.unsubscribe_headers("http://c.example/u") == {
        "List-Unsubscribe": "<http://c.example/u>"
    }
    assert mail.unsubscribe_headers("https://c.example/u")["List-Unsubscribe-Post"] == (
        "List-Unsubscribe=One-Click"
    )
