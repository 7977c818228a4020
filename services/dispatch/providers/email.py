"""Email over SMTP (any relay: Postfix, SES/SendGrid SMTP endpoints, a local catcher). The relay's
address passes the egress guard (egress.py) at save and at each send, where the socket opens to
the checked address and TLS still verifies the host name."""

from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from services.dispatch.channels import EMAIL, ConfigError, Outgoing, ProviderError, ProviderResult
from services.dispatch.egress import EgressClient, EgressGuard, open_socket
from services.dispatch.providers import refused_as, required, timeout_of


def _domain(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "nudge.local"


def build_message(config: dict, outgoing: Outgoing) -> EmailMessage:
    content = outgoing.content
    message = EmailMessage()
    message["From"] = config["sender"]
    message["To"] = outgoing.to
    message["Subject"] = content.subject or ""
    message["Date"] = formatdate(localtime=False)
    # Derived from the delivery id, so a resend of the same attempt carries the same id and
    # receivers (and our bounce matching) can recognize it.
    message["Message-ID"] = f"<{outgoing.delivery_id}@{_domain(config['sender'])}>"
    if config.get("reply_to"):
        message["Reply-To"] = config["reply_to"]
    if unsubscribe_url := content.data.get("unsubscribe_url"):
        # RFC 2369 + RFC 8058 one-click: Gmail and Yahoo require both for bulk senders. The
        # one-click URL comes first: clients POST to the first https URL they find.
        also = content.data.get("unsubscribe_also")
        message["List-Unsubscribe"] = ", ".join(f"<{url}>" for url in (unsubscribe_url, also) if url)
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(content.body or "")
    if content.html:
        message.add_alternative(content.html, subtype="html")
    return message


class SmtpAdapter:
    # SMTP has no idempotency key (Message-ID is not deduplicated by relays).
    channel, name, idempotent = EMAIL, "smtp", False

    def check_config(self, config: dict) -> dict:
        required(config, "host", "port", "sender")
        try:
            port = int(config["port"])
        except (TypeError, ValueError):
            raise ConfigError("config.port must be an integer", field="config.port") from None
        if "@" not in parseaddr(config["sender"])[1]:
            raise ConfigError("config.sender must be an email address", field="config.sender")
        if config.get("password") and not config.get("username"):
            raise ConfigError("config.username is required with a password", field="config.username")
        return {**config, "port": port, "starttls": bool(config.get("starttls", False)),
                "use_tls": bool(config.get("use_tls", False)), "timeout_seconds": timeout_of(config, 30)}

    async def check_target(self, config: dict, guard: EgressGuard) -> None:
        with refused_as("config.host"):
            await guard.check_host(str(config["host"]).strip("[]"), config["port"])

    async def send(self, config: dict, outgoing: Outgoing, http: EgressClient) -> ProviderResult:
        message = build_message(config, outgoing)
        host, sock = str(config["host"]).strip("[]"), None
        try:
            sock = await open_socket(http.guard, host, config["port"], config["timeout_seconds"])
            await aiosmtplib.send(
                message, hostname=host, port=None, sock=sock,
                username=config.get("username") or None, password=config.get("password") or None,
                use_tls=config["use_tls"], start_tls=config["starttls"] and not config["use_tls"],
                timeout=config["timeout_seconds"])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            first = exc.recipients[0]  # one message, one recipient
            raise _smtp_error(first.code, f"recipient refused: {first.code} {first.message}", recipient=True) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ProviderError(f"smtp: authentication failed ({exc.code})") from None
        except aiosmtplib.SMTPResponseException as exc:
            raise _smtp_error(exc.code, f"server answered {exc.code} {exc.message}") from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            # Connect failures, timeouts, dropped connections: the relay may be back soon. Past
            # the connect, the relay may have taken the message (a timeout waiting for its answer
            # to DATA): the outcome is unknown.
            connect = isinstance(exc, aiosmtplib.SMTPConnectError) or (
                isinstance(exc, OSError) and not isinstance(exc, aiosmtplib.SMTPException))
            raise ProviderError(f"smtp: {type(exc).__name__}: {exc}", retryable=True, ambiguous=not connect) from None
        finally:
            if sock is not None:
                sock.close()  # aiosmtplib closed its transport over it; this covers a failure before
        return ProviderResult(provider=self.name, provider_message_id=message["Message-ID"])


def _smtp_error(code: int, text: str, recipient: bool = False) -> ProviderError:
    # 4xx is temporary by definition (greylisting, mailbox busy); a 5xx on RCPT means this
    # address will not take mail (unknown user, disabled mailbox), so fall back to the next channel.
    if 400 <= code < 500:
        return ProviderError(f"smtp: {text}", retryable=True)
    return ProviderError(f"smtp: {text}", unreachable=recipient)
