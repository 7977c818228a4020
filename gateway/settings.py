from limits import parse
from pydantic import SecretStr, field_validator

from kit.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    http_port: int = 8080
    profile_addr: str = "localhost:50051"
    segment_addr: str = "localhost:50052"  # host:port of the segment service
    dispatch_addr: str = "localhost:50053"  # host:port of the dispatch service
    journey_addr: str = "127.0.0.1:50054"  # host:port of the journey service
    metrics_addr: str = "127.0.0.1:50055"  # host:port of the metrics service
    # Keyed hash of API keys; unset in the embedded mode → a random pepper kept in data_dir.
    api_key_pepper: SecretStr | None = None
    # Requests per workspace, a bucket per kind of key, in `limits` notation (a sliding window).
    rate_limit_write: str = "1000/second"
    rate_limit_admin: str = "200/second"
    max_event_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    # Any other request body (management routes, receipts).
    max_request_bytes: int = 1024 * 1024
    # Deadline of a call to a service.
    rpc_timeout_seconds: float = 10.0

    @field_validator("rate_limit_write", "rate_limit_admin")
    @classmethod
    def _a_rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError(f"expected a rate such as '1000/second' or '60 per minute', got {value!r}") from None
        return value
