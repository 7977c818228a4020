"""The one guard on every address dispatch connects to: webhooks, web push endpoints, SMTP
relays, provider endpoints and MMS images.

After DNS, every address of the host must be public: not loopback, private, link-local,
multicast, reserved, unspecified, shared (100.64.0.0/10) or otherwise non-global (an
IPv4-mapped IPv6 address counts as its IPv4 one). A cloud metadata address is never reached.
The only exceptions are the operator's: `NUDGE_EGRESS_ALLOW`, a deployment setting, lists
addresses or networks, each optionally with a port, that dispatch may reach although they are
not public (a relay in the cluster, local test servers). A workspace's configuration can only
narrow what a send reaches (a webhook's `allowed_hosts`), never widen it.

HTTP goes through `EgressClient`, whose connections open in `GuardedNetwork`: the host is
resolved once, every answer checked, and the socket opened to a checked address, while TLS
still verifies the URL's host name (httpcore passes it as SNI). A second DNS answer therefore
cannot swap in an internal address (DNS rebinding), and a redirect, which opens a connection
of its own, is checked like the first request. SMTP gets a socket opened the same way
(`open_socket`). Each refusal raises `EgressRefused` (the delivery's reason) and is logged.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpcore
import httpx

from kit.logs import get_logger
from services.dispatch.channels import ProviderError

log = get_logger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
# AWS/GCP/Azure (and AWS's IPv6), Alibaba: refused even when an allowance covers them.
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200"))
KINDS = (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_multicast", "multicast"),
         ("is_unspecified", "unspecified"), ("is_reserved", "reserved"), ("is_private", "private"))


class EgressRefused(ProviderError):
    """An address dispatch may not connect to: never worth a retry."""

    def __init__(self, detail: str, unreachable: bool = False) -> None:
        super().__init__(f"egress refused: {detail}", unreachable=unreachable)
        self.detail = detail


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def ip_of(address: str) -> Address:
    """The address, an IPv4-mapped IPv6 one as its IPv4 (::ffff:127.0.0.1 is loopback in disguise)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # no IPv6 zone id
    return ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip


def kind_of(ip: Address) -> str | None:
    """What makes an address internal ("loopback", "private", …); None for a public one."""
    if ip in METADATA:
        return "a cloud metadata address"
    for attribute, kind in KINDS:
        if getattr(ip, attribute):
            return kind
    return None if ip.is_global else "not a public address"


@dataclass(frozen=True)
class Allowance:
    """The operator's exceptions: (network, port or None for every port)."""
    entries: tuple[tuple[Network, int | None], ...] = ()

    @classmethod
    def parse(cls, text: str) -> "Allowance":
        """"10.0.0.0/8, 127.0.0.1:2525, [::1]:8080, ::1": comma-separated addresses or networks,
        each with an optional port (an IPv6 one in brackets then); ValueError naming a bad one."""
        return cls(tuple(_entry(item) for item in (part.strip() for part in text.split(",")) if item))

    def permits(self, ip: Address, port: int | None) -> bool:
        """`port` None: on every port, which only an entry without a port grants. Never a metadata address."""
        return ip not in METADATA and any(ip in network and (allowed is None or allowed == port)
                                          for network, allowed in self.entries)


def _entry(item: str) -> tuple[Network, int | None]:
    network, port = item, ""
    if item.startswith("["):
        network, _, rest = item[1:].partition("]")
        if rest and not rest.startswith(":"):
            network = item  # not "[address]" nor "[address]:port": refused below
        port = rest[1:]
    elif item.count(":") == 1:
        network, port = item.split(":")
    try:
        parsed = ipaddress.ip_network(network, strict=False)
        number = int(port) if port else None
    except ValueError:
        number, parsed = 0, None
    if parsed is None or (number is not None and not 0 < number < 65536):
        raise ValueError(f"egress_allow: {item!r} is not an address or network, with an optional :port")
    return parsed, number


class EgressGuard:
    """Resolves a host and checks each of its addresses; `resolve` is the DNS seam."""

    def __init__(self, allowance: Allowance = Allowance(), resolve: Resolver = system_resolve) -> None:
        self.allowance, self._resolve = allowance, resolve

    async def addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses, every one allowed on this port; EgressRefused naming the first
        that is not (which answer a connection would use is not ours to pick), OSError when the
        name does not resolve."""
        found = await self._resolve(host, port)
        if not found:
            raise socket.gaierror(f"{host} has no address")
        for address in found:
            self.check(host, address, port)
        return found

    async def check_host(self, host: str, port: int | None) -> None:
        """At save: `host` may be reached (on `port`, or on every port when None). A name that
        does not resolve passes: each send checks it again."""
        try:
            found = await self._resolve(host, port or 0)
        except OSError:
            return
        for address in found:
            self.check(host, address, port)

    def check(self, host: str, address: str, port: int | None) -> None:
        ip = ip_of(address)
        kind = kind_of(ip)
        if kind is None or self.allowance.permits(ip, port):
            return
        log.warning("egress refused", host=host, address=address, port=port, kind=kind)
        named = address if host.strip("[]") == address else f"{host} resolves to {address}, which"
        raise EgressRefused(f"{named} is {kind}")

    async def operator_allows(self, host: str, port: int) -> bool:
        """Every address of `host` is an internal one the operator allows: a local server that
        may be spoken to as the operator chose (plain http to a local push service)."""
        try:
            found = await self._resolve(host, port)
        except OSError:
            return False
        return bool(found) and all(self.allowance.permits(ip_of(a), port) for a in found)


def url_target(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL; EgressRefused for anything else."""
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        raise EgressRefused("not a valid URL") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise EgressRefused("only http and https URLs with a host are allowed")
    return target.host.lower().rstrip("."), target.port or (443 if target.scheme == "https" else 80)


class GuardedNetwork(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with the guard in front: the socket opens to an address the
    guard checked; the connection above it still speaks TLS to the host name."""

    def __init__(self, guard: EgressGuard, inner: httpcore.AsyncNetworkBackend) -> None:
        self._guard, self._inner = guard, inner

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                          socket_options: Iterable | None = None) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await self._guard.addresses(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        for address in addresses[:-1]:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout):
                continue  # the next address, as a resolving connect would
        return await self._inner.connect_tcp(addresses[-1], port, timeout, local_address, socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable | None = None) -> httpcore.AsyncNetworkStream:
        raise EgressRefused("unix sockets are not reached")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class EgressClient(httpx.AsyncClient):
    """An httpx client whose every connection passes the guard (`guard`, also for non-HTTP
    callers such as SMTP). Proxies from the environment are not used: a proxy would resolve and
    connect to the target itself, past the guard. Redirects are not followed: callers follow them."""

    def __init__(self, guard: EgressGuard, *, http2: bool = False, verify=True, **kwargs) -> None:
        transport = httpx.AsyncHTTPTransport(http2=http2, verify=verify)
        pool = transport._pool  # httpx exposes no seam for httpcore's network backend; this is it
        pool._network_backend = GuardedNetwork(guard, pool._network_backend)
        super().__init__(transport=transport, trust_env=False, follow_redirects=False, **kwargs)
        self.guard, self._options = guard, {"verify": verify, **kwargs}
        self._http2: EgressClient | None = None

    def http2(self) -> "EgressClient":
        """A client of the same guard speaking HTTP/2 (APNs speaks nothing else)."""
        if self._http2 is None:
            self._http2 = EgressClient(self.guard, http2=True, **self._options)
        return self._http2

    async def aclose(self) -> None:
        if self._http2 is not None:
            await self._http2.aclose()
        await super().aclose()


async def open_socket(guard: EgressGuard, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket connected to a checked address of `host` (for SMTP, which then speaks TLS to
    the name); OSError when none answers."""
    loop = asyncio.get_running_loop()
    error: OSError = OSError(f"{host}: no address answered")
    for address in await guard.addresses(host, port):
        sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (address, port))
            return sock
        except OSError as exc:  # TimeoutError included
            sock.close()
            error = exc
    raise error
