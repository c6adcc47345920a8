"""SIP over UDP and TCP for asyncio (protocols, no streams; uvloop-friendly).

Each received message is decoded with :func:`protocols.sip.message.decode` and handed to a
:data:`Handler` with the :class:`Flow` it came on; answering on that flow sends the answer
back the way RFC 3261 §18.2.2 wants it: over TCP on the same connection, over UDP to the
source address and port the datagram came from (as RFC 3581 ``rport`` asks, and what
works through NAT).

- UDP (:class:`UdpEndpoint`): one datagram is one message (§18.3). Datagrams of CRLFs only
  (keep-alives) are ignored; undecodable ones are counted and dropped.
- TCP (:class:`TcpConnection`, :class:`TcpServer`, :func:`open_tcp`): the byte stream is cut
  by :class:`~protocols.sip.message.StreamFramer`. A message that frames but does not decode
  is dropped; a stream whose framing breaks is closed, since it cannot be resynchronised.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protocols.errors import CodecError
from protocols.sip.message import Message, StreamFramer, decode, is_keepalive

__all__ = [
    "DEFAULT_UDP_BUFFER",
    "TransportKind",
    "Handler",
    "Flow",
    "UdpFlow",
    "UdpEndpoint",
    "TcpConnection",
    "TcpServer",
    "TransportStats",
    "open_udp",
    "open_tcp",
]

log = logging.getLogger(__name__)

DEFAULT_UDP_BUFFER = 4 * 1024 * 1024  # bytes asked for SO_RCVBUF/SO_SNDBUF (see open_udp)


class TransportKind(enum.StrEnum):
    """A SIP transport, as written in Via (RFC 3261 §20.42) in upper case."""

    UDP = "udp"
    TCP = "tcp"


@dataclass(slots=True)
class TransportStats:
    """Counters of one endpoint or server."""

    received: int = 0
    sent: int = 0
    keepalives: int = 0
    undecodable: int = 0
    send_errors: int = 0


class Flow(abc.ABC):
    """Where a message came from, and the way back to it."""

    __slots__ = ()
    kind: TransportKind
    reliable: bool

    @property
    @abc.abstractmethod
    def peer(self) -> tuple[str, int]:
        """The remote address (host, port)."""

    @property
    @abc.abstractmethod
    def local(self) -> tuple[str, int]:
        """Our address on this flow (host, port)."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True when nothing can be sent on this flow any more."""

    @abc.abstractmethod
    def send(self, data: bytes) -> None:
        """Send one encoded message; raises OSError when the transport cannot."""


Handler = Callable[[Message, Flow], None]


# --------------------------------------------------------------------------- UDP


class UdpFlow(Flow):
    """A remote address reached through a :class:`UdpEndpoint`."""

    __slots__ = ("endpoint", "_peer")
    kind = TransportKind.UDP
    reliable = False

    def __init__(self, endpoint: UdpEndpoint, peer: tuple[str, int]) -> None:
        self.endpoint = endpoint
        self._peer = peer

    @property
    def peer(self) -> tuple[str, int]:
        return self._peer

    @property
    def local(self) -> tuple[str, int]:
        return self.endpoint.local

    @property
    def closed(self) -> bool:
        return self.endpoint.closed

    def send(self, data: bytes) -> None:
        self.endpoint.sendto(data, self._peer)

    def __repr__(self) -> str:
        return f"<UdpFlow {self._peer[0]}:{self._peer[1]}>"


class UdpEndpoint(asyncio.DatagramProtocol):
    """One UDP socket carrying SIP (RFC 3261 §18.1.1, §18.2.1)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stats = TransportStats()
        self.transport: asyncio.DatagramTransport | None = None
        self.local: tuple[str, int] = ("", 0)
        self.closed = False

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        stats = self.stats
        stats.received += 1
        if is_keepalive(data):
            stats.keepalives += 1
            return
        try:
            message = decode(data)
        except CodecError as exc:
            stats.undecodable += 1
            log.debug("undecodable SIP datagram from %s:%s: %s", addr[0], addr[1], exc)
            return
        self.handler(message, UdpFlow(self, addr[:2]))

    def error_received(self, exc: Exception) -> None:  # ICMP errors on the socket
        self.stats.send_errors += 1
        log.debug("SIP UDP socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.transport is None or self.closed:
            raise ConnectionError("SIP UDP endpoint is closed")
        self.transport.sendto(data, addr)
        self.stats.sent += 1

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def open_udp(host: str, port: int, handler: Handler, *,
                   buffer_size: int | None = DEFAULT_UDP_BUFFER) -> UdpEndpoint:
    """Bind a SIP UDP endpoint on ``host:port`` (port 0: any free port).

    ``buffer_size`` asks the kernel for socket buffers that big (SO_RCVBUF/SO_SNDBUF;
    Linux caps them at net.core.rmem_max/wmem_max): with the default 200 KiB, a burst of a
    few hundred INVITEs while the event loop is busy overflows the receive buffer and the
    datagrams are lost, so the peers must retransmit (seen as ``receive buffer errors`` in
    ``netstat -su``). None keeps the system default.
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if buffer_size is not None:
            for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                try:
                    sock.setsockopt(socket.SOL_SOCKET, opt, buffer_size)
                except OSError:  # pragma: no cover - refused: keep the default
                    pass
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    _, endpoint = await loop.create_datagram_endpoint(lambda: UdpEndpoint(handler),
                                                      sock=sock)
    return endpoint


# --------------------------------------------------------------------------- TCP


class TcpConnection(Flow, asyncio.Protocol):
    """One TCP connection carrying SIP, framed by Content-Length (§18.3)."""

    kind = TransportKind.TCP
    reliable = True

    def __init__(self, handler: Handler,
                 on_lost: Callable[[TcpConnection, BaseException | None], None] | None = None,
                 stats: TransportStats | None = None) -> None:
        self.handler = handler
        self.on_lost = on_lost
        self.stats = stats if stats is not None else TransportStats()
        self.transport: asyncio.Transport | None = None
        self._framer = StreamFramer()
        self._peer: tuple[str, int] = ("", 0)
        self._local: tuple[str, int] = ("", 0)
        self._closed = False

    @property
    def peer(self) -> tuple[str, int]:
        return self._peer

    @property
    def local(self) -> tuple[str, int]:
        return self._local

    @property
    def closed(self) -> bool:
        return self._closed or self.transport is None or self.transport.is_closing()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._peer = transport.get_extra_info("peername")[:2]
        self._local = transport.get_extra_info("sockname")[:2]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:  # pragma: no cover - not every socket takes it
                pass

    def data_received(self, data: bytes) -> None:
        try:
            frames = self._framer.feed(data)
        except CodecError as exc:
            log.info("SIP TCP stream from %s:%s broken, closing: %s", *self._peer, exc)
            self.stats.undecodable += 1
            self.close()
            return
        for frame in frames:
            self.stats.received += 1
            try:
                message = decode(frame, stream=True)
            except CodecError as exc:
                self.stats.undecodable += 1
                log.debug("undecodable SIP message from %s:%s: %s", *self._peer, exc)
                continue
            self.handler(message, self)
            if self._closed:
                return
        if self._framer.error is not None:
            log.info("SIP TCP stream from %s:%s broken, closing: %s", *self._peer,
                     self._framer.error)
            self.stats.undecodable += 1
            self.close()

    def send(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionError(f"SIP TCP connection to {self._peer[0]}:{self._peer[1]} "
                                  "is closed")
        assert self.transport is not None
        self.transport.write(data)
        self.stats.sent += 1

    def close(self) -> None:
        self._closed = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed = True
        if self.on_lost is not None:
            self.on_lost(self, exc)

    def __repr__(self) -> str:
        return f"<TcpConnection {self._peer[0]}:{self._peer[1]}{' closed' if self._closed else ''}>"


async def open_tcp(host: str, port: int, handler: Handler, *, timeout: float,
                   on_lost: Callable[[TcpConnection, BaseException | None], None] | None = None
                   ) -> TcpConnection:
    """Connect to ``host:port``; raises OSError or TimeoutError."""
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(timeout):
        _, conn = await loop.create_connection(lambda: TcpConnection(handler, on_lost),
                                               host, port)
    return conn


class TcpServer:
    """Accepts SIP over TCP (§18.2.1) and hands every message to ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stats = TransportStats()
        self.connections: set[TcpConnection] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        return self._server.sockets[0].getsockname()[1]

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, host, port)

    def _accept(self) -> TcpConnection:
        conn = TcpConnection(self.handler, self._lost, self.stats)
        self.connections.add(conn)
        return conn

    def _lost(self, conn: TcpConnection, exc: BaseException | None) -> None:
        self.connections.discard(conn)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
