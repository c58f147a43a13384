"""TCP_NODELAY on the connections uvicorn's worker processes accept.

``uvicorn --workers N`` binds the listening socket itself with ``proto`` 0; accepted
sockets inherit it and asyncio only turns Nagle off for sockets that report
``IPPROTO_TCP`` (uvicorn issue #3149). Nagle plus the client's delayed ACK then adds about
40 ms to every keep-alive request after the first (measured here: 44 ms vs 0.3 ms for a
trivial app with 2 workers). Until uvicorn sets it, the app sets it: uvicorn's ``send``
is a method of an object holding the connection's transport.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

_INET = (socket.AF_INET, socket.AF_INET6)


def set_nodelay(send: Any) -> None:
    """Turn Nagle off on the socket behind uvicorn's ``send``, if it is a TCP socket."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in _INET:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
