"""python -m gateway: serve the HTTP API."""

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    # uvicorn handles SIGTERM: it stops accepting, finishes in-flight requests, then exits.
    uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.http_port,
                log_config=None, access_log=False, timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
