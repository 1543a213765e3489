"""Running the app: the listening socket, and uvicorn with an HTTP protocol whose own rejections are JSON too.

The socket is bound here rather than by uvicorn: a port in use (or an address that is not this machine's) is then
one line and exit 2, instead of uvicorn's start-up and shut-down log around its error. And a request the HTTP
parser itself refuses before the app sees it (a Content-Length that is not a number, a malformed request line)
gets the app's error shape - ``{"detail": ..., "errors": []}`` as JSON, 422 - instead of uvicorn's plain-text 400.
"""

from __future__ import annotations

import errno
import json
import socket
from typing import Any

from rnnkit.errors import UserError

PROTOCOL_ERROR = (
    "the request could not be read as HTTP (a Content-Length or Transfer-Encoding that does not frame the body, "
    "or a malformed request line or header)"
)


def listen(host: str, port: int) -> socket.socket:
    """The listening socket on ``host:port``, or one UserError line saying why it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn chooses
    # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on accepted
    # sockets whose proto says TCP, and with it on a keep-alive client waits ~40 ms (delayed ACK) for every response
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            why = "the port is in use (another server?); choose another with port=..."
        elif e.errno in (errno.EACCES, errno.EPERM):
            why = "permission denied (ports below 1024 need privileges); choose another with port=..."
        elif e.errno == errno.EADDRNOTAVAIL:
            why = "not an address of this machine; check host=..."
        else:
            why = (e.strerror or str(e)).lower()
        raise UserError(f"cannot listen on {host}:{port}: {why}") from None
    except (socket.gaierror, UnicodeError, OverflowError) as e:
        sock.close()
        raise UserError(f"host=... {host!r}: not a valid address ({e})") from None
    sock.set_inheritable(True)
    return sock


def json_protocol() -> type:
    """uvicorn's HTTP protocol class (httptools when installed, else h11) answering what its parser refuses as the
    app would: JSON, 422, the one error shape."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    class JsonErrors(Base):  # type: ignore[misc, valid-type]
        def send_400_response(self, msg: str) -> None:
            body = json.dumps({"detail": PROTOCOL_ERROR, "errors": []}).encode()
            head = (
                b"HTTP/1.1 422 Unprocessable Content\r\ncontent-type: application/json\r\n"
                b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
            )
            self.transport.write(head + body)
            self.transport.close()

    return JsonErrors


def run(app: Any, sock: socket.socket, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``app`` on the bound ``sock`` until Ctrl-C (or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, http=json_protocol())
    uvicorn.Server(config).run(sockets=[sock])
