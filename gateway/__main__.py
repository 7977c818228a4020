"""python -m gateway: serve the HTTP API."""

import signal
import sys

import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    # uvicorn re-raises the stop signal after its graceful shutdown; exiting through
    # SystemExit instead of the default handler lets atexit release the embedded servers,
    # and a second signal (Ctrl-C reaches the whole group, then the supervisor's SIGTERM)
    # is ignored so it cannot cut that release short.
    def leave(*_) -> None:
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, signal.SIG_IGN)
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, leave)
    # On SIGTERM uvicorn stops accepting, finishes in-flight requests, then exits.
    uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.http_port,
                log_config=None, access_log=False, timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
