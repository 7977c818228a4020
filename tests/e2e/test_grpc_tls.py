"""gRPC between the platform's processes over mutual TLS: given certificates and a CA, every
service serves TLS and asks its callers for a certificate the CA signed, and every caller
(gateway and services) presents its own; the platform works end to end, and a caller with no
certificate or no TLS is refused."""

import datetime
import ipaddress
import re
import secrets
import tempfile
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kit.settings import REPO_ROOT
from tests.support.waiting import eventually_sync


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: str, key, issuer: str, issuer_key, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = (builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, and one certificate it signed for localhost that every process of the test uses."""
    ca_key, own_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("nudge test CA", ca_key, "nudge test CA", ca_key, ca=True)
    own = _certificate("localhost", own_key, "nudge test CA", ca_key, ca=False)
    files = {"ca": directory / "ca.pem", "cert": directory / "service.pem", "key": directory / "service.key"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(own.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(_pem_key(own_key))
    return files


async def _health(channel: grpc.aio.Channel) -> int:
    async with channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return reply.status


async def test_the_platform_runs_over_mutual_tls_and_refuses_other_callers(launcher_factory):
    with tempfile.TemporaryDirectory(prefix="nudge-e2e-tls-", dir="/tmp", ignore_cleanup_errors=True) as data_dir:
        files = make_certificates(Path(data_dir))
        env = {f"NUDGE_GRPC_TLS_{name.upper()}": str(path) for name, path in files.items()}
        platform = launcher_factory(Path(data_dir) / "data", env=env).start()
        works_end_to_end(platform)
        await refuses_a_caller_without_tls_or_a_certificate(f"localhost:{platform.profile_port}", files)


def works_end_to_end(platform) -> None:
    user = f"tls-{secrets.token_hex(4)}"
    with platform.admin() as admin, platform.tracking() as tracking:
        assert tracking.post("/v1/identify", json={"userId": user, "traits": {"plan": "pro"}}).status_code == 200
        profile = eventually_sync(lambda: (admin.get("/v1/profiles", params={"userId": user}).json()["profiles"]
                                           or [{}])[0].get("id"), timeout=120)  # gateway → profile
        reply = admin.post("/v1/segments", json={"name": "pro", "rules": {"trait": "plan", "op": "eq", "value": "pro"}})
        assert reply.status_code == 201, reply.text
        segment = reply.json()["id"]
        eventually_sync(lambda: admin.get(f"/v1/segments/{segment}/members/{profile}").json()["member"], timeout=120)
        # the segment service asks the journey service whether a live journey uses it
        assert admin.delete(f"/v1/segments/{segment}").status_code == 204


async def refuses_a_caller_without_tls_or_a_certificate(address: str, files: dict[str, Path]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as plain:
        await _health(grpc.aio.insecure_channel(address))
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
    anonymous = grpc.ssl_channel_credentials(root_certificates=files["ca"].read_bytes())
    with pytest.raises(grpc.aio.AioRpcError) as no_certificate:
        await _health(grpc.aio.secure_channel(address, anonymous))
    assert no_certificate.value.code() == grpc.StatusCode.UNAVAILABLE
    presented = grpc.ssl_channel_credentials(root_certificates=files["ca"].read_bytes(),
                                             private_key=files["key"].read_bytes(),
                                             certificate_chain=files["cert"].read_bytes())
    assert await _health(grpc.aio.secure_channel(address, presented)) == health_pb2.HealthCheckResponse.SERVING


def test_every_channel_and_port_is_opened_where_tls_is_decided():
    opened_elsewhere = [f"{path.relative_to(REPO_ROOT)}:{n}"
                        for package in ("kit", "gateway", "services", "devserver")
                        for path in (REPO_ROOT / package).rglob("*.py") if path.name != "grpc_channels.py"
                        for n, line in enumerate(path.read_text().splitlines(), 1)
                        if re.search(r"insecure_channel|secure_channel|add_insecure_port|add_secure_port", line)]
    assert opened_elsewhere == []
