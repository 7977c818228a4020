"""A local TCP listener that counts the connections made to it: where a send must never
connect (a refused address), a count of zero proves it did not."""

import asyncio


class CountingListener:
    """Listens on 127.0.0.1 (and ::1 on the same port, where the machine has IPv6), counts each
    connection and closes it."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._servers: list[asyncio.Server] = []

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def __aenter__(self) -> "CountingListener":
        first = await asyncio.start_server(self._accepted, "127.0.0.1", 0)
        self.port = first.sockets[0].getsockname()[1]
        self._servers.append(first)
        try:  # a name such as localhost may resolve to ::1 as well
            self._servers.append(await asyncio.start_server(self._accepted, "::1", self.port))
        except OSError:
            pass
        return self

    async def __aexit__(self, *exc) -> None:
        for server in self._servers:
            server.close()
            await server.wait_closed()
