"""The listening socket `rnnkit serve` binds itself (so a port in use is one line, not uvicorn's log).

The connections it accepts must have Nagle's algorithm off: asyncio sets TCP_NODELAY only on sockets whose
``proto`` is IPPROTO_TCP, and a socket made with the default proto 0 kept Nagle on, which made a keep-alive client
wait for the delayed ACK (~40 ms) on every response - a 7 ms classification took 52 ms.
"""

from __future__ import annotations

import asyncio
import socket

from rnnkit.serve.server import listen


def test_accepted_connections_have_nagle_off() -> None:
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            conn = transport.get_extra_info("socket")
            seen.append(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Probe, sock=sock)  # what uvicorn does with sockets=[sock]
        async with server:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            for _ in range(200):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(main())
    assert seen and seen[0] != 0, "TCP_NODELAY is off on the server's accepted connection"
