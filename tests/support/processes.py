"""Ports for the servers and processes tests start (the e2e launcher, journey service
children, local provider servers all bind to free ports on 127.0.0.1)."""

import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
