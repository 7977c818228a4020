"""Provider adapters: one module per provider family, `registry` maps channel → provider → adapter.

Shared here: config field checks and the mapping of transport failures, so every adapter
reports a missing field and a timeout the same way. Error messages never carry credentials
or the full request URL (NHN puts the app key in the path)."""

import httpx

from services.dispatch.channels import ConfigError, ProviderError

DEFAULT_TIMEOUT = 10.0


def required(config: dict, *names: str) -> dict:
    """The named fields, each a non-empty value, or ConfigError naming the first missing one."""
    for name in names:
        value = config.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise ConfigError(f"config.{name} is required", field=f"config.{name}")
    return config


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
