"""gRPC between Nudge's processes: plain inside a trusted network (or a service mesh that adds
mTLS itself), TLS or mutual TLS when the deployment gives certificates. Every channel and
every server port is opened here, so one setting covers all of them.

    NUDGE_GRPC_TLS_CERT, NUDGE_GRPC_TLS_KEY  this process's certificate chain and key (PEM
                                             files): served on its gRPC port, and presented
                                             to a server that asks for a client certificate
    NUDGE_GRPC_TLS_CA                        the CA bundle that signed the services'
                                             certificates: outgoing calls use TLS and verify
                                             the server against it; a server given it asks
                                             its callers for a certificate it signed (mTLS)
"""

from functools import cache
from pathlib import Path

import grpc
from grpc import aio
from pydantic_settings import BaseSettings, SettingsConfigDict

# A page of 500 events of 32 KB, or the export of a long history, is far above gRPC's 4 MB default.
MESSAGE_SIZE_OPTIONS = [("grpc.max_send_message_length", 256 * 1024 * 1024),
                        ("grpc.max_receive_message_length", 256 * 1024 * 1024)]


class GrpcTlsSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NUDGE_GRPC_TLS_", extra="ignore")

    cert: Path | None = None
    key: Path | None = None
    ca: Path | None = None

    def own_pair(self) -> tuple[bytes, bytes] | None:
        """(key, certificate chain), or None when this process has no certificate."""
        if (self.cert is None) != (self.key is None):
            raise SystemExit("NUDGE_GRPC_TLS_CERT and NUDGE_GRPC_TLS_KEY go together: give both or neither")
        return (self.key.read_bytes(), self.cert.read_bytes()) if self.cert and self.key else None


@cache
def tls_settings() -> GrpcTlsSettings:
    return GrpcTlsSettings()


def channel(address: str, interceptors=None) -> aio.Channel:
    """A channel to another service: TLS when a CA is configured, else plain."""
    tls = tls_settings()
    if tls.ca is None:
        return aio.insecure_channel(address, options=MESSAGE_SIZE_OPTIONS, interceptors=interceptors)
    pair = tls.own_pair()
    credentials = grpc.ssl_channel_credentials(root_certificates=tls.ca.read_bytes(),
                                               private_key=pair[0] if pair else None,
                                               certificate_chain=pair[1] if pair else None)
    return aio.secure_channel(address, credentials, options=MESSAGE_SIZE_OPTIONS, interceptors=interceptors)


def add_port(server: aio.Server, address: str) -> int:
    """Binds the server: TLS when this process has a certificate, asking callers for theirs
    when a CA is configured too; plain otherwise."""
    tls = tls_settings()
    pair = tls.own_pair()
    if pair is None:
        if tls.ca is not None:
            raise SystemExit("NUDGE_GRPC_TLS_CA is set but this service has no certificate "
                             "(NUDGE_GRPC_TLS_CERT and NUDGE_GRPC_TLS_KEY): it cannot serve TLS")
        return server.add_insecure_port(address)
    credentials = grpc.ssl_server_credentials(
        [pair], root_certificates=tls.ca.read_bytes() if tls.ca else None, require_client_auth=tls.ca is not None)
    return server.add_secure_port(address, credentials)
