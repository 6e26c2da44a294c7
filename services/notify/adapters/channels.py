"""The real channel clients: e-mail over SMTP, SMS through a carrier's HTTP API, signed webhooks to agencies.

Every message carries its delivery id (mail: Message-ID and X-Minorprot-Delivery; SMS: client_reference;
webhook: X-Minorprot-Delivery and delivery_id): one sent again after a crash between its send and its record
(at least once) is recognisable as a repeat by whoever receives it.

Each turns a failure into DeliveryError, permanent when trying again cannot help, so the delivery worker
knows whether to back off or to give up and list it for operators.

The carrier's HTTP shape (carriers differ; this is the one seam to adapt):
    POST {SMS_CARRIER_URL}/messages   Authorization: Bearer {SMS_CARRIER_API_KEY}
    {"to": "+8613800000000", "text": "...", "client_reference": "<delivery id>"}
    -> 2xx {"message_id": "..."}; 400/401/403/404/422: refused for good; 408, 429, 5xx, no answer: try again.
Replies from phones come back through the gateway's inbound route (see ADR 0015).

A webhook is `POST {url}` with a JSON body and the headers
    X-Minorprot-Timestamp: <unix seconds>
    X-Minorprot-Signature: v1=<hex HMAC-SHA256(agency key, "<timestamp>.<body>")>
so the agency checks the sender and refuses replays older than a few minutes (`webhook_signature`); each
agency of each town has its own key (`agency_key`), shown to the town administrator with its contact point.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import time
import urllib.error
import urllib.request
from email.message import EmailMessage

from services.notify.domain.channels import DeliveryError, Outgoing

PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405, 410, 413, 422})


class SmtpMailer:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        timeout: float = 10.0,
        username: str = "",
        password: str = "",
        starttls: bool = False,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._timeout = timeout
        self._username, self._password, self._starttls = username, password, starttls

    def send(self, message: Outgoing) -> str:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = message.address
        mail["Subject"] = message.title
        # One Message-ID per delivery: a message sent again after a crash between the send and its record is
        # the same message to the receiving mail system, which drops the repeat.
        message_id = f"<{message.delivery_id}@minorprot.local>"
        mail["Message-ID"] = message_id
        mail["X-Minorprot-Delivery"] = message.delivery_id
        mail.set_content(message.text)
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                if self._starttls:
                    smtp.starttls()
                if self._username:
                    smtp.login(self._username, self._password)
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as error:
            raise DeliveryError(f"recipient refused: {error.recipients}", permanent=True) from error
        except smtplib.SMTPResponseException as error:
            raise DeliveryError(
                f"SMTP {error.smtp_code}: {error.smtp_error!r}", permanent=error.smtp_code >= 500
            ) from error
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"SMTP unavailable: {type(error).__name__}: {error}") from error
        return message_id


def _post_json(url: str, body: bytes, headers: dict[str, str], timeout: float) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - the URL is configuration or an agency's registered endpoint
        url, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer: bytes = response.read()
            return answer
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code} from {url}", permanent=error.code in PERMANENT_HTTP) from error
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryError(f"no answer from {url}: {error}") from error


class HttpSmsCarrier:
    def __init__(self, base_url: str, api_key: str, *, timeout: float = 10.0) -> None:
        self._url = base_url.rstrip("/") + "/messages"
        self._api_key = api_key
        self._timeout = timeout

    def send(self, message: Outgoing) -> str:
        body = json.dumps(
            {"to": message.address, "text": message.text, "client_reference": message.delivery_id}, ensure_ascii=False
        ).encode()
        answer = _post_json(self._url, body, {"Authorization": f"Bearer {self._api_key}"}, self._timeout)
        try:
            return str(json.loads(answer)["message_id"])
        except (ValueError, KeyError, TypeError) as error:
            raise DeliveryError(f"the carrier's answer has no message_id: {answer[:200]!r}") from error


def webhook_signature(key: bytes, timestamp: str, body: bytes) -> str:
    return "v1=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def agency_key(signing_key: bytes, tenant: str, recipient: str) -> bytes:
    """Each agency of each town has a key of its own, derived from notify's one key (nothing to store): an
    agency can check what notify sent it, and cannot sign as notify to another agency."""
    return hmac.new(signing_key, f"{tenant}|{recipient}".encode(), hashlib.sha256).digest()


class WebhookSender:
    def __init__(self, signing_key: bytes, *, timeout: float = 10.0) -> None:
        self._key = signing_key
        self._timeout = timeout

    def send(self, message: Outgoing) -> str:
        body = json.dumps(
            {
                "delivery_id": message.delivery_id,
                "tenant": message.tenant,
                "event_type": message.event_type,
                "subject_type": message.subject_type,
                "subject_id": message.subject_id,
                "priority": message.priority,
                "title": message.title,
                "text": message.text,
            },
            ensure_ascii=False,
        ).encode()
        stamp = str(int(time.time()))
        headers = {
            "X-Minorprot-Timestamp": stamp,
            "X-Minorprot-Signature": webhook_signature(
                agency_key(self._key, message.tenant, message.recipient), stamp, body
            ),
            "X-Minorprot-Delivery": message.delivery_id,
        }
        _post_json(message.address, body, headers, self._timeout)
        return message.delivery_id
