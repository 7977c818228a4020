"""Local stand-ins for the providers: each speaks its provider's request format, checks the
credentials the way the provider does, records what it got and answers like the provider.
HTTP ones run on uvicorn on 127.0.0.1; email is a real aiosmtpd server."""

import asyncio
import base64
import inspect
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import http_ece
import jwt
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.processes import free_port
from tests.support.servers import served


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    extra: dict = field(default_factory=dict)  # what the fake derived: decrypted payload, JWT claims

    def json(self):
        return json.loads(self.body)


class HttpProvider:
    """A uvicorn server whose every request goes to `answer(received) -> Response` (or an
    awaitable of one: see `Stall`)."""

    def __init__(self, answer: Callable[[Received], Response], tls: tuple[str, str] | None = None) -> None:
        self.answer, self.received = answer, []
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"

        async def endpoint(request: Request) -> Response:
            got = Received(request.method, request.url.path, {k.lower(): v for k, v in request.headers.items()},
                           await request.body())
            self.received.append(got)
            answer = self.answer(got)
            return await answer if inspect.isawaitable(answer) else answer

        app = Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])
        self._serving = served(app, self.port, lifespan="off", ssl_certfile=tls and tls[0],
                               ssl_keyfile=tls and tls[1])

    async def __aenter__(self) -> "HttpProvider":
        await self._serving.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._serving.__aexit__(*exc)


class Stall:
    """A provider that takes the first `times` requests (its `answer` runs: it records them, as a
    real provider would) and then does not answer until `release()`, past the client's timeout;
    later requests are answered at once."""

    def __init__(self, answer: Callable[[Received], Response], times: int = 1) -> None:
        self.answer, self.left, self.released = answer, times, asyncio.Event()

    def __call__(self, got: Received):
        response = self.answer(got)
        if self.left <= 0:
            return response
        self.left -= 1

        async def stalled() -> Response:
            await asyncio.wait_for(self.released.wait(), 60)
            return response
        return stalled()

    def release(self) -> None:
        self.released.set()


def _nhn(code: int = 0, message: str = "SUCCESS") -> dict:
    return {"resultCode": code, "resultMessage": message, "isSuccessful": code == 0}


def nhn_sms(app_key: str, secret_key: str, files: dict | None = None) -> Callable[[Received], Response]:
    """NHN SMS v3.0: recipient 01099999999 is invalid (-2019), 01055555555 hits their system error.
    MMS attachments uploaded through attachfile/binaryUpload (JPEG, .jpg / .jpeg name of at most
    45 characters, at most 300 KB) are kept in `files` (file id → (name, bytes)); an MMS naming
    an id it never gave out is refused."""
    files = {} if files is None else files

    def upload(got: Received) -> Response:
        body = got.json()
        image = base64.b64decode(body.get("fileBody", ""))
        name = body.get("fileName", "")
        if not name.endswith((".jpg", ".jpeg")) or len(name) > 45 or not body.get("createUser") \
                or len(image) > 300 * 1024 or not image.startswith(b"\xff\xd8\xff"):
            return JSONResponse({"header": _nhn(-1, "Invalid attachment.")})
        file_id = 300000 + len(files)
        files[file_id] = (name, image)
        return JSONResponse({"header": _nhn(), "body": {"data": {
            "fileId": file_id, "fileName": name, "filePath": f"0/toast-mt/{file_id}"}}})

    def answer(got: Received) -> Response:
        if got.headers.get("x-secret-key") != secret_key or f"/appKeys/{app_key}/" not in got.path:
            return JSONResponse({"header": _nhn(-1000, "Invalid appKey.")})
        if got.path.endswith("/attachfile/binaryUpload"):
            return upload(got)
        if any(i not in files for i in got.json().get("attachFileIdList", [])):
            return JSONResponse({"header": _nhn(-1, "Invalid attachFileId.")})
        number = got.json()["recipientList"][0].get("recipientNo")
        if number == "01055555555":
            return JSONResponse({"header": _nhn(-9999, "System error.")}, status_code=500)
        code = -2019 if number == "01099999999" else 0
        return JSONResponse({"header": _nhn(), "body": {"data": {
            "requestId": "20260101000000abcdefg", "statusCode": "2",
            "sendResultList": [{"recipientNo": number, "resultCode": code,
                                "resultMessage": "RecipientNo is invalid." if code else "SUCCESS",
                                "recipientSeq": 1}]}}})
    return answer


def nhn_kakao(app_key: str, secret_key: str) -> Callable[[Received], Response]:
    """NHN Kakao Bizmessage: 01033333333 has no KakaoTalk (3018), 01099999999 is invalid (-5000),
    and a repeated X-NC-API-IDEMPOTENCY-KEY is answered with -1005."""
    seen: set[str] = set()

    def answer(got: Received) -> Response:
        if got.headers.get("x-secret-key") != secret_key or f"/appkeys/{app_key}/" not in got.path:
            return JSONResponse({"header": _nhn(-1000, "Invalid appKey.")})
        key = got.headers.get("x-nc-api-idempotency-key", "")
        if key in seen:
            return JSONResponse({"header": _nhn(-1005, "The same 'X-NC-API-IDEMPOTENCY-KEY' was used.")})
        seen.add(key)
        number = got.json()["recipientList"][0]["recipientNo"]
        if number == "01099999999":
            return JSONResponse({"header": _nhn(-5000, "RecipientNo is invalid.")})
        code = 3018 if number == "01033333333" else 0
        return JSONResponse({"header": _nhn(), "message": {
            "requestId": "20260101kakao", "sendResults": [{"recipientSeq": 1, "recipientNo": number,
                                                           "resultCode": code, "resultMessage": "SUCCESS"}]}})
    return answer


def fcm(project_id: str, access_token: str) -> Callable[[Received], Response]:
    """FCM HTTP v1 with its error shape; tokens named stale/bad/busy fail like real ones."""
    def error(status: int, name: str, message: str, code: str | None = None) -> Response:
        details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": code}] if code else []
        return JSONResponse({"error": {"code": status, "message": message, "status": name, "details": details}},
                            status_code=status)

    def answer(got: Received) -> Response:
        if got.headers.get("authorization") != f"Bearer {access_token}":
            return error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")
        if got.path != f"/v1/projects/{project_id}/messages:send":
            return error(404, "NOT_FOUND", "Requested entity was not found.")
        token = got.json()["message"]["token"]
        if token == "stale":
            return error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
        if token == "bad":
            return error(400, "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token",
                         "INVALID_ARGUMENT")
        if token == "busy":
            return error(503, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
        return JSONResponse({"name": f"projects/{project_id}/messages/0:1500415314455276%31bd1c9631bd1c96"})
    return answer


def apns(public_key_pem: bytes, team_id: str, key_id: str, bundle_id: str) -> Callable[[Received], Response]:
    """APNs: verifies the provider JWT with the team's public key; tokens gone/bad/busy fail."""
    def reason(status: int, text: str) -> Response:
        return JSONResponse({"reason": text}, status_code=status)

    def answer(got: Received) -> Response:
        token = got.headers.get("authorization", "").removeprefix("bearer ")
        try:
            claims = jwt.decode(token, public_key_pem, algorithms=["ES256"])
        except jwt.PyJWTError:
            return reason(403, "InvalidProviderToken")
        if jwt.get_unverified_header(token).get("kid") != key_id or claims.get("iss") != team_id:
            return reason(403, "InvalidProviderToken")
        got.extra["claims"] = claims
        if got.headers.get("apns-topic") != bundle_id:
            return reason(400, "TopicDisallowed")
        device = got.path.removeprefix("/3/device/")
        if device == "gone":
            return JSONResponse({"reason": "Unregistered", "timestamp": 1700000000000}, status_code=410)
        if device == "bad":
            return reason(400, "BadDeviceToken")
        if device == "busy":
            return reason(503, "ServiceUnavailable")
        return Response(status_code=200, headers={"apns-id": got.headers["apns-id"]})
    return answer


def push_service(subscription_key: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> Callable[[Received], Response]:
    """An RFC 8030 push service: checks the VAPID JWT against the key in the header, decrypts the
    aes128gcm body with the subscription's private key, and answers 201 (or 410 for /gone)."""
    def answer(got: Received) -> Response:
        scheme, _, params = got.headers.get("authorization", "").partition(" ")
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        raw = base64.urlsafe_b64decode(parts["k"] + "=" * (-len(parts["k"]) % 4))
        vapid_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        try:
            got.extra["claims"] = jwt.decode(parts["t"], vapid_public, algorithms=["ES256"],
                                             audience=f"http://127.0.0.1:{got.headers['host'].split(':')[1]}")
        except jwt.PyJWTError as exc:
            return Response(f"bad VAPID: {exc}", status_code=403)
        got.extra["vapid_key"], got.extra["scheme"] = parts["k"], scheme
        got.extra["payload"] = http_ece.decrypt(got.body, private_key=subscription_key, auth_secret=auth_secret,
                                                version="aes128gcm")
        if got.path == "/gone":
            return Response(status_code=410)
        return Response(status_code=201, headers={"location": f"/messages/{len(got.body)}"})
    return answer


@dataclass
class MailRecord:
    sender: str
    recipients: list[str]
    message: object  # email.message.EmailMessage
    login: tuple[str, str] | None


class SmtpProvider:
    """A real SMTP server (aiosmtpd) with AUTH LOGIN/PLAIN; rejects nobody@ (550) and busy@ (451).
    With `stall_data`, it takes each message and then does not answer DATA until it is set (a
    threading.Event: the server runs in a thread of its own)."""

    def __init__(self, username: str, password: str, stall_data: threading.Event | None = None) -> None:
        self.stall_data = stall_data
        self.mail: list[MailRecord] = []
        self.port = free_port()
        self._credentials = (username, password)
        self._login: tuple[str, str] | None = None
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port, authenticator=self._auth,
                                     auth_require_tls=False)

    def _auth(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        login = (auth_data.login.decode(), auth_data.password.decode())
        self._login = login
        return AuthResult(success=login == self._credentials)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.mail.append(MailRecord(envelope.mail_from, list(envelope.rcpt_tos),
                                    message_from_bytes(envelope.original_content, policy=policy.default),
                                    self._login))
        if self.stall_data is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.stall_data.wait, 60)
        return "250 Message accepted"

    def __enter__(self) -> "SmtpProvider":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


def webhook_receiver(port_of: Callable[[], int]) -> Callable[[Received], Response]:
    """A customer's endpoint: /hook takes it, /to-loopback and /to-metadata redirect inward,
    /chain redirects to itself forever, /fail is down, /gone is retired."""
    def answer(got: Received) -> Response:
        port = port_of()
        moves = {"/to-loopback": f"http://127.0.0.1:{port}/hook", "/to-metadata": "http://169.254.169.254/latest",
                 "/chain": "/chain", "/to-hook": "/hook"}
        if got.path in moves:
            return Response(status_code=307, headers={"location": moves[got.path]})
        status = {"/hook": 204, "/fail": 503, "/gone": 410}.get(got.path, 404)
        return Response(status_code=status)
    return answer


def self_signed(host: str, directory) -> tuple[str, str, bytes]:
    """A certificate for `host` (cert path, key path, PEM) so a TLS test can check name verification."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return str(directory / "cert.pem"), str(directory / "key.pem"), cert_pem
