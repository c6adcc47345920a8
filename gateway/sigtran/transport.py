"""Transports that carry M3UA: TCP and SCTP, as asyncio protocols (no streams, uvloop-friendly).

- **TCP** (:class:`TcpTransport`): a byte stream; the receiver cuts it into messages by the
  32-bit length of the M3UA common header (RFC 4666 §3.1), as libosmo-sigtran does for M3UA over
  TCP. The SCTP stream id of each message is ignored. Nagle is off (TCP_NODELAY): a TCAP Begin
  must not wait for the next one.
- **SCTP** (:class:`SctpTransport`, via pysctp): one message per SCTP DATA chunk, payload
  protocol identifier 3 (RFC 4666 §1.4.7 / IANA), management on stream 0 and DATA on stream 1.
  Needs a kernel with SCTP and the ``pysctp`` package; :func:`sctp_unavailable_reason` says what
  is missing.

A transport reports to a :class:`TransportListener`: :meth:`~TransportListener.transport_data`
(TCP chunks, to be framed), :meth:`~TransportListener.transport_message` (whole SCTP messages
with their stream id) and, once, :meth:`~TransportListener.transport_lost`.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import logging
import socket
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Protocol

__all__ = [
    "M3UA_PPID",
    "TransportKind",
    "TransportListener",
    "Transport",
    "TcpTransport",
    "SctpTransport",
    "SctpServer",
    "open_transport",
    "serve_transport",
    "sctp_unavailable_reason",
]

log = logging.getLogger(__name__)

M3UA_PPID = 3  # SCTP payload protocol identifier of M3UA (RFC 4666 §1.4.7, IANA)
IPPROTO_SCTP = getattr(socket, "IPPROTO_SCTP", 132)
SCTP_RECV_MAX = 65535 + 16  # one M3UA message at most (RFC 4666 §3.1), with headroom
SCTP_STREAMS = 2  # stream 0 (management) and stream 1 (DATA)


class TransportKind(enum.Enum):
    """The transport under an association."""

    TCP = "tcp"
    SCTP = "sctp"


class TransportListener(Protocol):
    """What a transport reports to (an :class:`~gateway.sigtran.association.Association`)."""

    def transport_data(self, data: bytes) -> None:
        """A chunk of the TCP byte stream (to be framed by the M3UA length)."""

    def transport_message(self, data: bytes, stream_id: int) -> None:
        """One whole message from SCTP, with the stream it came on."""

    def transport_lost(self, exc: BaseException | None) -> None:
        """The transport is gone (called once; ``exc`` is None on an orderly close)."""


OnConnect = Callable[["Transport"], TransportListener]


class Transport(abc.ABC):
    """One connected transport carrying M3UA messages."""

    kind: ClassVar[TransportKind]
    __slots__ = ("bytes_sent", "bytes_received", "write_paused")

    def __init__(self) -> None:
        self.bytes_sent = 0
        self.bytes_received = 0
        self.write_paused = False  # the kernel buffer is full (asyncio flow control)

    @abc.abstractmethod
    def send_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Send encoded messages, each with its SCTP stream id (ignored by TCP)."""

    def send(self, stream_id: int, data: bytes) -> None:
        """Send one encoded message on ``stream_id``."""
        self.send_many(((stream_id, data),))

    @abc.abstractmethod
    def close(self) -> None:
        """Close once what is queued has been written."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Close at once, dropping what is queued."""

    @abc.abstractmethod
    def is_closing(self) -> bool:
        """True once :meth:`close` or :meth:`abort` was called or the peer went away."""

    @property
    @abc.abstractmethod
    def peername(self) -> Any:
        """The peer's address."""

    @property
    @abc.abstractmethod
    def sockname(self) -> Any:
        """The local address."""


# --------------------------------------------------------------------------- TCP


class TcpTransport(Transport):
    """M3UA over TCP on an asyncio (or uvloop) transport."""

    kind = TransportKind.TCP
    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        super().__init__()
        self._transport = transport

    def send_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        chunks = [d for _, d in items]
        if not chunks:
            return
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        self.bytes_sent += len(data)
        self._transport.write(data)

    def send(self, stream_id: int, data: bytes) -> None:
        self.bytes_sent += len(data)
        self._transport.write(data)

    def close(self) -> None:
        self._transport.close()

    def abort(self) -> None:
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    @property
    def peername(self) -> Any:
        return self._transport.get_extra_info("peername")

    @property
    def sockname(self) -> Any:
        return self._transport.get_extra_info("sockname")


def _set_nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not TCP (a test double) or already closed
        pass


class _TcpProtocol(asyncio.Protocol):
    """Feeds one TCP connection to its listener."""

    __slots__ = ("_on_connect", "_listener", "wrapper")

    def __init__(self, on_connect: OnConnect) -> None:
        self._on_connect = on_connect
        self._listener: TransportListener | None = None
        self.wrapper: TcpTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports quack like asyncio.Transport without subclassing it
        _set_nodelay(transport)
        self.wrapper = TcpTransport(transport)  # type: ignore[arg-type]
        try:
            self._listener = self._on_connect(self.wrapper)
        except Exception:
            log.exception("M3UA/TCP: refusing connection from %s",
                          transport.get_extra_info("peername"))
            transport.abort()

    def data_received(self, data: bytes) -> None:
        listener = self._listener
        if listener is not None:
            self.wrapper.bytes_received += len(data)  # type: ignore[union-attr]
            listener.transport_data(data)

    def eof_received(self) -> bool:
        return False  # half-open M3UA makes no sense: close

    def connection_lost(self, exc: Exception | None) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.transport_lost(exc)

    def pause_writing(self) -> None:
        if self.wrapper is not None:
            self.wrapper.write_paused = True

    def resume_writing(self) -> None:
        if self.wrapper is not None:
            self.wrapper.write_paused = False


async def open_tcp(host: str, port: int, listener: TransportListener, *,
                   local_addr: tuple[str, int] | None = None) -> TcpTransport:
    """Connect to ``host:port`` over TCP; ``listener`` gets everything received."""
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: _TcpProtocol(lambda _t: listener),
                                            host, port, local_addr=local_addr)
    assert proto.wrapper is not None
    return proto.wrapper


async def serve_tcp(host: str, port: int, on_connect: OnConnect) -> asyncio.Server:
    """Listen on ``host:port`` over TCP; ``on_connect(transport)`` returns each connection's
    listener."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(lambda: _TcpProtocol(on_connect), host, port,
                                    reuse_address=True)


# --------------------------------------------------------------------------- SCTP


def sctp_unavailable_reason() -> str | None:
    """None when M3UA over SCTP can run here, else why not (no kernel SCTP, no pysctp)."""
    try:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_SCTP)
    except OSError as exc:
        return (f"the kernel has no SCTP (socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): "
                f"{exc.strerror or exc}); load it with 'modprobe sctp'")
    probe.close()
    try:
        import sctp  # noqa: F401
    except ImportError:
        return "the pysctp package is not installed (pip install pysctp)"
    return None


def _sctp_module() -> Any:
    reason = sctp_unavailable_reason()
    if reason is not None:
        raise OSError(f"M3UA over SCTP is not available: {reason}")
    import sctp
    return sctp


def _prepare_sctp_socket(sk: Any) -> None:
    """Non-blocking, Nagle off, stream ids reported on receive, two streams each way."""
    sk.setblocking(False)
    try:
        sk.events.data_io = True  # sctp_recv then reports each message's stream id
        sk.events.flush()
    except OSError:
        log.debug("M3UA/SCTP: could not subscribe to sndrcvinfo", exc_info=True)
    try:
        sk.nodelay = True
    except OSError:
        log.debug("M3UA/SCTP: could not set SCTP_NODELAY", exc_info=True)


class SctpTransport(Transport):
    """M3UA over one SCTP association (a one-to-one, TCP-style pysctp socket) driven by the
    event loop's reader/writer callbacks. Each message goes out with PPID 3 on its stream."""

    kind = TransportKind.SCTP

    def __init__(self, loop: asyncio.AbstractEventLoop, sk: Any, on_connect: OnConnect,
                 sctp: Any) -> None:
        super().__init__()
        self._loop = loop
        self._sk = sk
        self._sctp = sctp
        self._fd = sk.fileno()
        self._wbuf: deque[tuple[int, bytes]] = deque()
        self._partial: list[bytes] = []
        self._closing = False
        self._lost = False
        self._writer = False
        self._peername = self._sockname = None
        try:
            self._peername = sk.getpeername()
            self._sockname = sk.getsockname()
        except OSError:
            pass
        _prepare_sctp_socket(sk)
        self._listener: TransportListener | None = on_connect(self)
        loop.add_reader(self._fd, self._read_ready)

    # --- receive

    def _read_ready(self) -> None:
        flag_notification = self._sctp.FLAG_NOTIFICATION
        flag_eor = self._sctp.FLAG_EOR
        for _ in range(64):  # bounded work per wake-up
            if self._lost:
                return
            try:
                _addr, flags, msg, info = self._sk.sctp_recv(SCTP_RECV_MAX)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fail(exc)
                return
            if flags & flag_notification:
                if self._ends_association(info):
                    self._fail(None)
                    return
                continue
            if not msg:  # an empty read on a TCP-style socket: the association closed
                self._fail(None)
                return
            if not flags & flag_eor:  # partial delivery: wait for the rest
                self._partial.append(msg)
                continue
            if self._partial:
                self._partial.append(msg)
                msg = b"".join(self._partial)
                self._partial.clear()
            self.bytes_received += len(msg)
            listener = self._listener
            if listener is not None:
                listener.transport_message(msg, getattr(info, "stream", 0))

    def _ends_association(self, info: Any) -> bool:
        """SHUTDOWN, or an association change other than COMM_UP (RFC 4666 §4.3.3: COMM LOST
        and RESTART take the ASP down)."""
        sctp = self._sctp
        if isinstance(info, sctp.shutdown_event):
            return True
        if isinstance(info, sctp.assoc_change):
            return info.state != sctp.assoc_change.state_COMM_UP
        return False

    # --- send

    def send_many(self, items: Iterable[tuple[int, bytes]]) -> None:
        if self._closing:
            return
        for sid, data in items:
            self.bytes_sent += len(data)
            if self._wbuf:
                self._wbuf.append((sid, data))
                continue
            try:
                self._sk.sctp_send(data, ppid=M3UA_PPID, stream=sid)
            except (BlockingIOError, InterruptedError):
                self._wbuf.append((sid, data))
                self._want_write()
            except OSError as exc:
                self._fail(exc)
                return

    def _want_write(self) -> None:
        if not self._writer:
            self._writer = True
            self.write_paused = True
            self._loop.add_writer(self._fd, self._write_ready)

    def _write_ready(self) -> None:
        buf = self._wbuf
        while buf:
            sid, data = buf[0]
            try:
                self._sk.sctp_send(data, ppid=M3UA_PPID, stream=sid)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._fail(exc)
                return
            buf.popleft()
        self._loop.remove_writer(self._fd)
        self._writer = False
        self.write_paused = False
        if self._closing:
            self._fail(None)

    # --- close

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if not self._wbuf:
            self._fail(None)

    def abort(self) -> None:
        self._closing = True
        self._wbuf.clear()
        self._fail(None)

    def is_closing(self) -> bool:
        return self._closing or self._lost

    def _fail(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._lost = True
        self._closing = True
        self._loop.remove_reader(self._fd)
        if self._writer:
            self._loop.remove_writer(self._fd)
            self._writer = False
        try:
            self._sk.close()
        except OSError:
            pass
        listener, self._listener = self._listener, None
        if listener is not None:
            self._loop.call_soon(listener.transport_lost, exc)

    @property
    def peername(self) -> Any:
        return self._peername

    @property
    def sockname(self) -> Any:
        return self._sockname


class SctpServer:
    """A listening SCTP socket; each accepted association gets an :class:`SctpTransport`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sk: Any, on_connect: OnConnect,
                 sctp: Any) -> None:
        self._loop = loop
        self._sk = sk
        self._on_connect = on_connect
        self._sctp = sctp
        self._closed = False
        loop.add_reader(sk.fileno(), self._accept_ready)

    @property
    def port(self) -> int:
        return self._sk.getsockname()[1]

    def _accept_ready(self) -> None:
        for _ in range(16):
            try:
                conn, _addr = self._sk.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                log.exception("M3UA/SCTP: accept failed")
                return
            try:
                SctpTransport(self._loop, conn, self._on_connect, self._sctp)
            except Exception:
                log.exception("M3UA/SCTP: refusing association")
                conn.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._loop.remove_reader(self._sk.fileno())
            self._sk.close()

    async def wait_closed(self) -> None:
        return None


async def open_sctp(host: str, port: int, listener: TransportListener, *,
                    local_addr: tuple[str, int] | None = None) -> SctpTransport:
    """Open an SCTP association to ``host:port`` (two streams each way)."""
    sctp = _sctp_module()
    loop = asyncio.get_running_loop()
    sk = sctp.sctpsocket_tcp(socket.AF_INET)
    try:
        sk.initparams.num_ostreams = SCTP_STREAMS
        sk.initparams.max_instreams = SCTP_STREAMS
        if local_addr is not None:
            sk.bind(local_addr)
        sk.setblocking(False)
        await loop.sock_connect(sk.sock(), (host, port))
        return SctpTransport(loop, sk, lambda _t: listener, sctp)
    except BaseException:
        sk.close()
        raise


async def serve_sctp(host: str, port: int, on_connect: OnConnect) -> SctpServer:
    """Listen for SCTP associations on ``host:port``."""
    sctp = _sctp_module()
    loop = asyncio.get_running_loop()
    sk = sctp.sctpsocket_tcp(socket.AF_INET)
    try:
        sk.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sk.initparams.num_ostreams = SCTP_STREAMS
        sk.initparams.max_instreams = SCTP_STREAMS
        sk.bind((host, port))
        sk.listen(64)
        sk.setblocking(False)
    except BaseException:
        sk.close()
        raise
    return SctpServer(loop, sk, on_connect, sctp)


# --------------------------------------------------------------------------- dispatch


async def open_transport(kind: TransportKind, host: str, port: int,
                         listener: TransportListener, *,
                         local_addr: tuple[str, int] | None = None) -> Transport:
    """Connect over ``kind``."""
    if kind is TransportKind.SCTP:
        return await open_sctp(host, port, listener, local_addr=local_addr)
    return await open_tcp(host, port, listener, local_addr=local_addr)


async def serve_transport(kind: TransportKind, host: str, port: int,
                          on_connect: OnConnect) -> asyncio.Server | SctpServer:
    """Listen over ``kind``."""
    if kind is TransportKind.SCTP:
        return await serve_sctp(host, port, on_connect)
    return await serve_tcp(host, port, on_connect)
