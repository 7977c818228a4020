"""Provider adapters: one module per provider family, `registry` maps channel → provider → adapter.

Shared here: config field checks and the mapping of transport failures, so every adapter
reports a missing field and a timeout the same way. Error messages never carry credentials
or the full request URL (NHN puts the app key in the path)."""

from contextlib import contextmanager

import httpx

from services.dispatch.channels import ConfigError, ProviderError
from services.dispatch.egress import EgressGuard, EgressRefused, url_target

DEFAULT_TIMEOUT = 10.0


def required(config: dict, *names: str) -> dict:
    """The named fields, each a non-empty value, or ConfigError naming the first missing one."""
    for name in names:
        value = config.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ConfigError(f"config.{name} is required", field=f"config.{name}")
    return config


def host_list(config: dict, name: str) -> list[str]:
    """config.<name>: the hosts a send may reach (a workspace's narrowing), normalized."""
    hosts = config.get(name) or []
    if not isinstance(hosts, list | tuple) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise ConfigError(f"config.{name} must be a list of host names", field=f"config.{name}")
    return [h.strip().lower().rstrip(".") for h in hosts]


async def check_hosts(guard: EgressGuard, hosts: list[str], field: str) -> None:
    """A workspace's list of hosts only narrows where sends go: an entry that is (or resolves
    to) an internal address is refused, unless the operator allows that address on every port."""
    for host in hosts:
        try:
            await guard.check_host(host.strip("[]"), None)
        except EgressRefused as err:
            raise EgressRefused(f"{err.detail} ({field} may only narrow where sends go)") from None


def narrowed(host: str, hosts: list[str], field: str) -> None:
    """EgressRefused unless `host` is in the workspace's list (an empty list narrows nothing)."""
    if hosts and host not in hosts:
        raise EgressRefused(f"{host} is not in {field}")


@contextmanager
def refused_as(field: str):
    """At save, the check every send will make: its refusal is a ConfigError naming the field."""
    try:
        yield
    except EgressRefused as err:
        raise ConfigError(f"{field}: {err}", field=field) from None


async def check_url(guard: EgressGuard, url: str, field: str, hosts: list[str] = (), hosts_field: str = "") -> None:
    """At save: the URL is one a send may reach (and in `hosts`, when the workspace lists any).
    A name that does not resolve yet passes; each send checks it again."""
    with refused_as(field):
        host, port = url_target(url)
        narrowed(host, hosts, hosts_field)
        await guard.check_host(host, port)


class EndpointAdapter:
    """An adapter whose one address is its provider's API, `config.endpoint`."""

    async def check_target(self, config: dict, guard: EgressGuard) -> None:
        await check_url(guard, config["endpoint"], "config.endpoint")


def timeout_of(config: dict, default: float = DEFAULT_TIMEOUT) -> float:
    try:
        value = float(config.get("timeout_seconds", default))
    except (TypeError, ValueError):
        raise ConfigError("config.timeout_seconds must be a number", field="config.timeout_seconds") from None
    if not 0 < value <= 60:
        raise ConfigError("config.timeout_seconds must be in (0, 60]", field="config.timeout_seconds")
    return value


# Failures before a byte of the request left: the provider cannot have taken it.
NOT_WRITTEN = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def transport_error(provider: str, exc: httpx.HTTPError) -> ProviderError:
    """Timeouts and connection failures are worth a retry; the provider may be back soon. Past
    the connect, the request may have been taken (it is then `ambiguous`)."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed ({type(exc).__name__})"
    return ProviderError(f"{provider}: request {kind}", retryable=True, ambiguous=not isinstance(exc, NOT_WRITTEN))


def delivery_options(config: dict) -> dict:
    """Channel settings of the pipeline rather than the provider: `resend_on_timeout` (default
    false) lets a provider without an idempotency key be asked again after a try whose outcome
    is unknown, accepting a possible second message."""
    if not isinstance(config.get("resend_on_timeout", False), bool):
        raise ConfigError("config.resend_on_timeout must be true or false", field="config.resend_on_timeout")
    return config


def status_error(provider: str, status: int, detail: str = "") -> ProviderError:
    """A non-success HTTP status with no more specific meaning: 429 and 5xx are retried."""
    suffix = f": {detail}" if detail else ""
    return ProviderError(f"{provider}: HTTP {status}{suffix}", retryable=status == 429 or status >= 500)


def json_or_empty(response: httpx.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
