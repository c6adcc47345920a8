"""SIP messages (RFC 3261 §7, §20), sans-IO: parse and write requests and responses.

:func:`decode` takes one whole message (a UDP datagram, or what :class:`StreamFramer` cut
from a TCP stream) and returns a :class:`Request` or a :class:`Response`; :func:`encode`
writes one back. The headers a transaction and a number-portability exchange rely on are
parsed into typed fields:

- ``Via`` (§20.42) -> :class:`Via`, all of them, top first: sent-protocol, sent-by, and the
  ``branch``, ``received`` and ``rport`` (RFC 3581) parameters;
- ``From``/``To`` (§20.20, §20.39) -> :class:`Address` with its ``tag``;
- ``Contact`` (§20.10) -> :class:`Address` list, with ``q`` and ``expires``;
- ``Call-ID`` (§20.8), ``CSeq`` (§20.16) -> :class:`CSeq`, ``Max-Forwards`` (§20.22);
- ``Content-Length`` (§20.14) frames the body and is written from the body, never stored.

Every other header is kept in :attr:`Request.headers` as ``(name, value)`` in the order
received; :meth:`~Request.header` and :meth:`~Request.header_values` read them.

Header names are case-insensitive and have compact forms (§7.3.3: ``i`` Call-ID, ``m``
Contact, ``f`` From, ``t`` To, ``v`` Via, ``l`` Content-Length, ``c`` Content-Type, ``k``
Supported, ``s`` Subject, ``e`` Content-Encoding, and those registered later: ``o``, ``r``,
``b``, ``u``, ``x``, ``a``, ``j``, ``d``, ``y``, ``n``); they are read into one canonical
spelling. A header folded over several lines (§7.3.1, leading white space) is unfolded; a
header repeated on several lines and a header holding a comma-separated list (only those
whose grammar is a list, §7.3.1) give the same values. Commas inside quoted strings and
``<...>`` do not split.

Framing (§18.3): over a datagram transport a message without Content-Length takes the rest
of the datagram as its body, and bytes beyond Content-Length are discarded; a Content-Length
larger than what arrived is an error. Over a stream transport Content-Length is mandatory
and :class:`StreamFramer` cuts the stream by it, ignoring CRLFs between messages (§7.5,
RFC 5626 §3.5.1 keep-alives).

Malformed input raises :class:`~protocols.errors.CodecError` (layer SIP) with the field and
the byte offset from the start of the message (or of the stream, for the framer), and
nothing else.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from ..errors import CodecError, Layer
from .uri import Param, Uri, _has_param, format_params, parse_uri
from .uri import find_param as _param

__all__ = [
    "SIP_VERSION",
    "MAGIC_COOKIE",
    "Method",
    "REASON_PHRASES",
    "COMPACT_FORMS",
    "canonical_name",
    "Via",
    "Address",
    "CSeq",
    "Header",
    "Request",
    "Response",
    "Message",
    "decode",
    "encode",
    "make_response",
    "parse_via",
    "parse_address",
    "parse_cseq",
    "split_header_list",
    "by_preference",
    "is_keepalive",
    "StreamFramer",
    "DEFAULT_MAX_MESSAGE_LENGTH",
]

SIP_VERSION = "SIP/2.0"
MAGIC_COOKIE = "z9hG4bK"  # RFC 3261 §8.1.1.7: a branch starting with it is RFC 3261-unique
DEFAULT_MAX_MESSAGE_LENGTH = 65535  # RFC 3261 §18.1.1: beyond the path MTU anyway
_SIP = Layer.SIP


class Method(enum.StrEnum):
    """Request methods (RFC 3261 §7.1 and the extensions a softswitch may send)."""

    INVITE = "INVITE"
    ACK = "ACK"
    BYE = "BYE"
    CANCEL = "CANCEL"
    OPTIONS = "OPTIONS"
    REGISTER = "REGISTER"
    PRACK = "PRACK"  # RFC 3262
    SUBSCRIBE = "SUBSCRIBE"  # RFC 6665
    NOTIFY = "NOTIFY"
    PUBLISH = "PUBLISH"  # RFC 3903
    INFO = "INFO"  # RFC 6086
    REFER = "REFER"  # RFC 3515
    MESSAGE = "MESSAGE"  # RFC 3428
    UPDATE = "UPDATE"  # RFC 3311


# RFC 3261 §21 (and RFC 3262/3265/3329 where a redirect server may meet them)
REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 423: "Interval Too Brief", 480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist", 482: "Loop Detected", 483: "Too Many Hops",
    484: "Address Incomplete", 485: "Ambiguous", 486: "Busy Here",
    487: "Request Terminated", 488: "Not Acceptable Here", 491: "Request Pending",
    493: "Undecipherable", 500: "Server Internal Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Server Time-out",
    505: "Version Not Supported", 513: "Message Too Large", 600: "Busy Everywhere",
    603: "Decline", 604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}

# RFC 3261 §7.3.3 and the IANA "Header Fields" registry (compact forms)
COMPACT_FORMS: dict[str, str] = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type",
    "d": "Request-Disposition", "e": "Content-Encoding", "f": "From", "i": "Call-ID",
    "j": "Reject-Contact", "k": "Supported", "l": "Content-Length", "m": "Contact",
    "n": "Identity-Info", "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To",
    "u": "Allow-Events", "v": "Via", "x": "Session-Expires", "y": "Identity",
}
_SHORT = {long.lower(): short for short, long in COMPACT_FORMS.items()}
_SPELLINGS = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From",
    "History-Info", "In-Reply-To", "Max-Forwards", "Min-Expires", "MIME-Version",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority",
    "Privacy", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck",
    "Reason", "Record-Route", "Refer-To", "Referred-By", "Reply-To", "Require",
    "Retry-After", "Route", "RSeq", "Server", "Service-Route", "Session-Expires",
    "Subject", "Supported", "Timestamp", "To", "Unsupported", "User-Agent", "Via",
    "Warning", "WWW-Authenticate", "Accept-Contact", "Reject-Contact",
    "Request-Disposition", "Identity", "Identity-Info", "Diversion", "Min-SE",
]
_CANONICAL = {s.lower(): s for s in _SPELLINGS}
_CANONICAL.update({k: v for k, v in COMPACT_FORMS.items()})
_KEYS = {k: v.lower() for k, v in _CANONICAL.items()}  # any spelling -> canonical, lower
# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1, §20)
_LIST_HEADERS = frozenset(s.lower() for s in (
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Error-Info",
    "In-Reply-To", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Proxy-Require",
    "Reason", "Record-Route", "Require", "Route", "Service-Route", "Supported",
    "Unsupported", "Via", "Warning", "History-Info", "Diversion", "Privacy",
    "Accept-Contact", "Reject-Contact", "Request-Disposition",
))

_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# one header parameter (RFC 3261 §25.1 generic-param), LWS allowed around ";" and "="; the
# value is a token, a host (IPv6 brackets, colons) or a quoted string kept with its quotes
_PARAM_RE = re.compile(r"[ \t]*;[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)"
                       r"(?:[ \t]*=[ \t]*(\"(?:[^\"\\]|\\.)*\"|[A-Za-z0-9\-.!%*_+`'~\[\]:]+))?")
_PARAMS_END_RE = re.compile(r"[ \t]*")
# field-name HCOLON field-value (RFC 3261 §7.3.1), surrounding white space left out
_HEADER_LINE_RE = re.compile(r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*:[ \t]*(.*?)[ \t]*")
_QVALUE_RE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")  # RFC 3261 §25.1 qvalue
_WS = " \t"
_SENT_PROTOCOL_RE = re.compile(
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*/[ \t]*"
    r"([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+")
_SENT_BY_RE = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-.]+)(?:[ \t]*:[ \t]*([0-9]+))?")
_CSEQ_RE = re.compile(r"[ \t]*([0-9]{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*")
_DIGITS_RE = re.compile(r"[ \t]*([0-9]{1,10})[ \t]*")
_CALL_ID_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
                         r"(?:@[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+)?")
_CONTENT_LENGTH_LINE = re.compile(rb"(?im)^(?:content-length|l)[ \t]*:[ \t]*([0-9]*)[ \t]*\r?$")

Header = tuple[str, str]


def _err(field: str, offset: int, reason: str) -> CodecError:
    return CodecError(_SIP, field, offset, reason)


def canonical_name(name: str) -> str:
    """The canonical spelling of a header name: compact forms expanded (``m`` ->
    ``Contact``), known names in their RFC spelling (``call-id`` -> ``Call-ID``), unknown
    ones as written."""
    return _CANONICAL.get(name.lower(), name)


def _is_token(s: str) -> bool:
    return _TOKEN_RE.fullmatch(s) is not None


# --------------------------------------------------------------------------- lexical helpers


def _quoted_end(text: str, start: int, field: str, offset: int) -> int:
    """Index just past the quoted-string opening at ``text[start]`` (RFC 3261 §25.1)."""
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise _err(field, offset + start, "unterminated quoted string")


def _unquote(quoted: str) -> str:
    inner = quoted[1:-1]
    return re.sub(r"\\(.)", r"\1", inner) if "\\" in inner else inner


def split_header_list(value: str, field: str = "header", offset: int = 0
                      ) -> list[tuple[int, str]]:
    """Split a list-valued header (RFC 3261 §7.3.1) on the commas that are outside quoted
    strings and ``<...>``; returns ``(offset of the element, element stripped)``."""
    if "," not in value and '"' not in value:
        stripped = value.strip(_WS)
        if not stripped:
            raise _err(field, offset, "empty element in a comma-separated list")
        return [(offset + len(value) - len(value.lstrip(_WS)), stripped)]
    out: list[tuple[int, str]] = []
    start = 0
    i = 0
    n = len(value)
    angle = False
    while i < n:
        c = value[i]
        if c == '"' and not angle:
            i = _quoted_end(value, i, field, offset)
            continue
        if c == "<":
            angle = True
        elif c == ">":
            angle = False
        elif c == "," and not angle:
            out.append((start, value[start:i]))
            start = i + 1
        i += 1
    out.append((start, value[start:]))
    result = []
    for pos, item in out:
        stripped = item.strip(_WS)
        if not stripped:
            raise _err(field, offset + pos, "empty element in a comma-separated list")
        result.append((offset + pos + (len(item) - len(item.lstrip(_WS))), stripped))
    return result


def _parse_params(text: str, offset: int, field: str) -> tuple[Param, ...]:
    """``*( SEMI generic-param )`` (RFC 3261 §25.1), LWS allowed around ``;`` and ``=``;
    a value is a token, a host or a quoted string (kept with its quotes)."""
    out: list[Param] = []
    pos = 0
    n = len(text)
    match = _PARAM_RE.match
    while True:
        m = match(text, pos)
        if m is None:
            end = _PARAMS_END_RE.match(text, pos).end()
            if end >= n:
                return tuple(out)
            if text[end] != ";":
                raise _err(field, offset + end, f"expected ';' before a parameter, found "
                                                f"{text[end]!r}")
            after = _PARAMS_END_RE.match(text, end + 1).end()
            if after >= n or text[after] in ";=":
                raise _err(field, offset + after, "empty parameter name")
            raise _err(field, offset + after, f"bad parameter at {text[after:after + 20]!r}")
        out.append((m.group(1), m.group(2)))
        pos = m.end()
        if pos < n and text[pos] not in " \t;":
            if text[pos] == "=":
                raise _err(field, offset + pos, f"parameter {m.group(1)!r} has '=' but no value")
            raise _err(field, offset + pos, f"unexpected {text[pos]!r} in a parameter")


def _replace_param(params: tuple[Param, ...], name: str, value: str | None
                   ) -> tuple[Param, ...]:
    out = []
    done = False
    for n, v in params:
        if n.lower() == name:
            if not done:
                out.append((n, value))
                done = True
        else:
            out.append((n, v))
    if not done:
        out.append((name, value))
    return tuple(out)


# --------------------------------------------------------------------------- typed headers


@dataclass(slots=True, frozen=True)
class Via:
    """One Via value (RFC 3261 §20.42): ``SIP/2.0/UDP host:port;branch=z9hG4bK...``."""

    transport: str
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()
    protocol: str = SIP_VERSION

    @property
    def branch(self) -> str | None:
        """The branch parameter (§8.1.1.7), which names the transaction."""
        return _param(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The ``received`` parameter (§18.2.1): the address the request came from."""
        return _param(self.params, "received")

    @property
    def has_rport(self) -> bool:
        """RFC 3581 §3: the client asks for the response to go to its source port."""
        return _has_param(self.params, "rport")

    @property
    def rport(self) -> int | None:
        """RFC 3581 §4: the source port the server filled in, or None."""
        v = _param(self.params, "rport")
        return int(v) if v is not None and v.isdigit() else None

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def param(self, name: str) -> str | None:
        return _param(self.params, name.lower())

    def with_param(self, name: str, value: str | None) -> Via:
        """This Via with parameter ``name`` set (replaced in place, or appended)."""
        return Via(self.transport, self.host, self.port,
                   _replace_param(self.params, name.lower(), value), self.protocol)

    def received_from(self, host: str, port: int) -> Via:
        """Stamp the address a request arrived from (RFC 3261 §18.2.1 ``received`` when the
        sent-by host differs; RFC 3581 §4 ``rport`` and ``received`` when rport was asked)."""
        via = self
        if self.has_rport:
            via = via.with_param("received", host).with_param("rport", str(port))
        elif self.host.strip("[]") != host:
            via = via.with_param("received", host)
        return via

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


@dataclass(slots=True, frozen=True)
class Address:
    """A name-addr or addr-spec with header parameters (RFC 3261 §20.10, §20.20, §20.39):
    the value of From, To, Contact, Route, Record-Route."""

    uri: Uri
    display_name: str | None = None
    params: tuple[Param, ...] = ()

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (§19.3) of From and To."""
        return _param(self.params, "tag")

    @property
    def q(self) -> float | None:
        """The ``q`` parameter of a Contact (§20.10): a preference from 0 to 1."""
        v = _param(self.params, "q")
        return None if v is None else float(v)

    @property
    def expires(self) -> int | None:
        v = _param(self.params, "expires")
        return int(v) if v is not None and v.isdigit() else None

    def param(self, name: str) -> str | None:
        return _param(self.params, name.lower())

    def with_tag(self, tag: str) -> Address:
        return Address(self.uri, self.display_name, _replace_param(self.params, "tag", tag))

    def __str__(self) -> str:
        if self.display_name is None:
            head = f"<{self.uri}>"
        else:
            name = self.display_name.replace("\\", "\\\\").replace('"', '\\"')
            head = f'"{name}" <{self.uri}>'
        return head + format_params(self.params)


@dataclass(slots=True, frozen=True)
class CSeq:
    """The CSeq header (RFC 3261 §20.16): a sequence number below 2**31 and a method."""

    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def by_preference(contacts: tuple[Address, ...] | list[Address]) -> list[Address]:
    """Contacts in the order a client should try them (RFC 3261 §8.1.3.4, §16.6): highest
    ``q`` first, a missing q counting as 1.0, ties in the order received."""
    return sorted(contacts, key=lambda c: -(1.0 if c.q is None else c.q))


def parse_via(value: str, offset: int = 0) -> Via:
    """One Via value (RFC 3261 §20.42)."""
    m = _SENT_PROTOCOL_RE.match(value.lstrip(_WS))
    lead = len(value) - len(value.lstrip(_WS))
    if m is None:
        raise _err("Via", offset, f"bad sent-protocol in {value[:40]!r}")
    name, version, transport = m.groups()
    if name.upper() != "SIP":
        raise _err("Via", offset + lead, f"protocol {name!r} is not SIP")
    pos = lead + m.end()
    m2 = _SENT_BY_RE.match(value, pos)
    if m2 is None:
        raise _err("Via", offset + pos, "bad sent-by")
    host, port_text = m2.groups()
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise _err("Via", offset + m2.start(2), f"port {port} is above 65535")
    params = _parse_params(value[m2.end():], offset + m2.end(), "Via")
    for n, v in params:
        ln = n.lower()
        if ln in ("branch", "received", "maddr", "ttl") and v is None:
            raise _err("Via", offset + m2.end(), f"Via parameter {n!r} needs a value")
        if ln == "rport" and v is not None and not v.isdigit():
            raise _err("Via", offset + m2.end(), f"rport {v!r} is not a port")
    return Via(transport.upper(), host, port, params, f"{name.upper()}/{version}")


# the common name-addr shapes in one match: ["quoted" | token words] <uri> ;params
_NAME_ADDR_RE = re.compile(
    r"[ \t]*(?:\"((?:[^\"\\]|\\.)*)\"[ \t]*|([A-Za-z0-9\-.!%*_+`'~]+(?:[ \t]+"
    r"[A-Za-z0-9\-.!%*_+`'~]+)*)[ \t]*)?<([^<>\"]*)>")


def parse_address(value: str, offset: int = 0, field: str = "address") -> Address:
    """A name-addr or an addr-spec, then header parameters (RFC 3261 §20.10, §25.1).

    With an addr-spec (no ``<...>``) every ``;`` parameter belongs to the header, not to the
    URI (§20.10)."""
    m = _NAME_ADDR_RE.match(value)
    if m is not None:
        quoted, words, uri_text = m.groups()
        display = _unquote('"' + quoted + '"') if quoted is not None else \
            (" ".join(words.split()) if words else None)
        params = _parse_params(value[m.end():], offset + m.end(), field)
        return _address(parse_uri(uri_text, offset + m.start(3)), display, params, field,
                        offset + m.end())
    i = 0
    n = len(value)
    while i < n and value[i] in _WS:
        i += 1
    if i >= n:
        raise _err(field, offset, "empty address")
    display: str | None = None
    if value[i] == '"':
        j = _quoted_end(value, i, field, offset)
        display = _unquote(value[i:j])
        i = j
        while i < n and value[i] in _WS:
            i += 1
        if i >= n or value[i] != "<":
            raise _err(field, offset + i, "expected '<' after the display name")
    lt = value.find("<", i)
    if lt >= 0 and (value[i] == "<" or ";" not in value[i:lt]):
        if display is None and lt > i:
            words = value[i:lt].split()
            if not all(_TOKEN_RE.fullmatch(w) for w in words):
                raise _err(field, offset + i, f"bad display name {value[i:lt]!r}")
            display = " ".join(words) or None
        gt = value.find(">", lt)
        if gt < 0:
            raise _err(field, offset + lt, "'<' without '>'")
        uri = parse_uri(value[lt + 1:gt], offset + lt + 1)
        rest_at = gt + 1
    else:
        end = i
        while end < n and value[end] not in ";" + _WS:
            end += 1
        spec = value[i:end]
        if "," in spec or "?" in spec:
            raise _err(field, offset + i, "an addr-spec without <> cannot hold ',' or '?' "
                                          "(RFC 3261 §20.10)")
        uri = parse_uri(spec, offset + i)
        rest_at = end
    params = _parse_params(value[rest_at:], offset + rest_at, field)
    return _address(uri, display, params, field, offset + rest_at)


def _address(uri: Uri, display: str | None, params: tuple[Param, ...], field: str,
             offset: int) -> Address:
    q = _param(params, "q")
    if q is not None and _QVALUE_RE.fullmatch(q) is None:
        raise _err(field, offset, f"q={q!r} is not a qvalue from 0 to 1 (§20.10)")
    return Address(uri, display, params)


def parse_cseq(value: str, offset: int = 0) -> CSeq:
    """The CSeq value (RFC 3261 §20.16)."""
    m = _CSEQ_RE.fullmatch(value)
    if m is None:
        raise _err("CSeq", offset, f"bad CSeq {value[:40]!r}")
    seq = int(m.group(1))
    if seq >= 2**31:
        raise _err("CSeq", offset, f"sequence number {seq} is not below 2**31 (§8.1.1.5)")
    return CSeq(seq, m.group(2))


def _parse_int(value: str, offset: int, field: str) -> int:
    m = _DIGITS_RE.fullmatch(value)
    if m is None:
        raise _err(field, offset, f"{value[:20]!r} is not a number")
    return int(m.group(1))


# --------------------------------------------------------------------------- messages


class _Headers:
    """Access to the headers kept as ``(name, value)`` (those without a typed field), and
    the branch of the top Via."""

    __slots__ = ()
    via: tuple[Via, ...]
    headers: tuple[Header, ...]

    @property
    def branch(self) -> str | None:
        """The branch of the top Via: the transaction the message belongs to (§17)."""
        return self.via[0].branch if self.via else None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any spelling or compact form), or None."""
        key = canonical_name(name).lower()
        for n, v in self.headers:
            if n.lower() == key:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name``: repeated headers in order, and list headers
        split on their commas (RFC 3261 §7.3.1)."""
        key = canonical_name(name).lower()
        out: list[str] = []
        for n, v in self.headers:
            if n.lower() == key:
                if key in _LIST_HEADERS:
                    out.extend(item for _, item in split_header_list(v, n))
                else:
                    out.append(v)
        return out


@dataclass(slots=True)
class Request(_Headers):
    """A SIP request (RFC 3261 §7.1). ``headers`` holds the headers without a field here,
    in order; Content-Length is derived from ``body``."""

    method: str
    uri: Uri
    via: tuple[Via, ...]
    from_: Address
    to: Address
    call_id: str
    cseq: CSeq
    max_forwards: int | None = 70
    contact: tuple[Address, ...] = ()
    headers: tuple[Header, ...] = ()
    body: bytes = b""


@dataclass(slots=True)
class Response(_Headers):
    """A SIP response (RFC 3261 §7.2)."""

    status: int
    reason: str
    via: tuple[Via, ...]
    from_: Address
    to: Address
    call_id: str
    cseq: CSeq
    contact: tuple[Address, ...] = ()
    headers: tuple[Header, ...] = ()
    body: bytes = b""

    @property
    def is_final(self) -> bool:
        return self.status >= 200


Message = Request | Response


def make_response(request: Request, status: int, reason: str | None = None, *,
                  to_tag: str | None = None, contact: tuple[Address, ...] = (),
                  headers: tuple[Header, ...] = (), body: bytes = b"") -> Response:
    """A response to ``request`` as a UAS builds it (RFC 3261 §8.2.6): Via (all, in order),
    From, Call-ID and CSeq copied; To copied and given ``to_tag`` when it has no tag and the
    status is above 100 (§8.2.6.2); a 100 also copies Timestamp (§8.2.6.1)."""
    if not 100 <= status <= 699:
        raise ValueError(f"status {status} is not a SIP status code")
    to = request.to
    if to_tag is not None and status > 100 and to.tag is None:
        to = to.with_tag(to_tag)
    if status == 100:
        ts = request.header("Timestamp")
        if ts is not None:
            headers = (("Timestamp", ts),) + tuple(headers)
    return Response(status, reason if reason is not None else REASON_PHRASES.get(status, ""),
                    request.via, request.from_, to, request.call_id, request.cseq,
                    tuple(contact), tuple(headers), body)


# --------------------------------------------------------------------------- decode


def _header_end(data: bytes) -> tuple[int, int] | None:
    """(end of the header section, start of the body), or None when there is no empty line
    yet. CRLF is the rule (§7); a bare LF is tolerated."""
    crlf = data.find(b"\r\n\r\n")
    lf = data.find(b"\n\n")
    if lf >= 0 and (crlf < 0 or lf < crlf):
        # "\r\n\n" is a CRLF line followed by a bare-LF empty line
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 4
    return None


def _lines(head: str) -> list[tuple[int, str]]:
    """(offset, line) for each line of the header section, CR stripped, folding undone
    (§7.3.1): a line starting with SP or HTAB continues the one before."""
    out: list[tuple[int, str]] = []
    pos = 0
    for raw in head.split("\n"):
        line = raw[:-1] if raw.endswith("\r") else raw
        if line[:1] in (" ", "\t") and out:
            off, prev = out[-1]
            out[-1] = (off, prev + " " + line.strip(_WS))
        elif line[:1] in (" ", "\t"):
            raise _err("start line", pos, "starts with white space")
        else:
            out.append((pos, line))
        pos += len(raw) + 1
    return out


def decode(data: bytes, *, stream: bool = False) -> Message:
    """Parse one whole SIP message. ``stream=True`` for a message cut from a stream by
    :class:`StreamFramer` (Content-Length mandatory, §18.3); otherwise a datagram."""
    ends = _header_end(data)
    if ends is None:
        raise _err("message", len(data), "no empty line after the headers")
    head_end, body_start = ends
    try:
        head = data[:head_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _err("message", exc.start, "header section is not UTF-8") from None
    try:
        return _decode(head, data, body_start, stream)
    except CodecError as exc:
        if head.isascii():
            raise
        # offsets were counted in characters; report bytes
        byte_offset = len(head[:exc.offset].encode("utf-8"))
        raise CodecError(exc.layer, exc.field, byte_offset, exc.reason) from None


def _decode(head: str, data: bytes, body_start: int, stream: bool) -> Message:
    lines = _lines(head)
    _, start = lines[0]
    if not start:
        raise _err("start line", 0, "empty start line")
    request = start[:4].upper() != "SIP/"
    method = reason = ""
    status = 0
    uri: Uri | None = None
    if request:
        parts = start.split(" ")
        if len(parts) != 3:
            raise _err("start line", 0, "request line is not 'Method SP Request-URI SP "
                                        "SIP-Version' (§7.1)")
        method, uri_text, version = parts
        if not _is_token(method):
            raise _err("method", 0, f"bad method {method!r}")
        if version.upper() != SIP_VERSION:
            raise _err("SIP-Version", len(method) + len(uri_text) + 2,
                       f"version {version!r} is not {SIP_VERSION}")
        uri = parse_uri(uri_text, len(method) + 1)
    else:
        version, _, rest = start.partition(" ")
        if version.upper() != SIP_VERSION:
            raise _err("SIP-Version", 0, f"version {version!r} is not {SIP_VERSION}")
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isdigit() or not code.isascii():
            raise _err("Status-Code", len(version) + 1, f"bad status code {code!r}")
        status = int(code)
        if not 100 <= status <= 699:
            raise _err("Status-Code", len(version) + 1, f"status {status} is not 100 to 699")

    vias: list[Via] = []
    contacts: list[Address] = []
    other: list[Header] = []
    single: dict[str, object] = {}
    where: dict[str, int] = {}  # offset of each single header's value
    header_line = _HEADER_LINE_RE.fullmatch
    for off, line in lines[1:]:
        m = header_line(line)
        if m is None:
            colon = line.find(":")
            if colon <= 0:
                raise _err("header", off, f"header line without a name and ':': "
                                          f"{line[:40]!r}")
            raise _err("header", off, f"bad header name {line[:colon].rstrip(_WS)!r}")
        name, value = m.groups()
        voff = off + m.start(2)
        lname = name.lower()
        canon = _CANONICAL.get(lname)
        key = _KEYS.get(lname, lname)
        if key == "via":
            for pos, item in split_header_list(value, "Via", voff):
                vias.append(parse_via(item, pos))
        elif key == "contact":
            if value == "*":
                raise _err("Contact", voff, "wildcard Contact '*' belongs in REGISTER only")
            for pos, item in split_header_list(value, "Contact", voff):
                contacts.append(parse_address(item, pos, "Contact"))
        elif key in _SINGLE:
            if key in single:
                raise _err(canon or name, off, f"{canon} appears more than once")
            single[key] = _SINGLE[key](value, voff)
            where[key] = voff
        else:
            other.append((canon if canon is not None else name, value))

    from_ = single.get("from")
    to = single.get("to")
    call_id = single.get("call-id")
    cseq = single.get("cseq")
    end = len(head)
    for fname, val in (("Via", vias), ("From", from_), ("To", to), ("Call-ID", call_id),
                       ("CSeq", cseq)):
        if not val:
            raise _err(fname, end, f"mandatory header {fname} is missing (§8.1.1)")
    assert isinstance(from_, Address) and isinstance(to, Address)
    assert isinstance(cseq, CSeq) and isinstance(call_id, str)
    body = _body(data, body_start, single.get("content-length"), stream, end)
    if request:
        if cseq.method != method:
            raise _err("CSeq", where["cseq"], f"CSeq method {cseq.method} is not the request's "
                                    f"{method} (§8.1.1.5)")
        assert uri is not None
        return Request(method, uri, tuple(vias), from_, to, call_id, cseq,
                       single.get("max-forwards"),
                       tuple(contacts), tuple(other), body)
    return Response(status, reason, tuple(vias), from_, to, call_id, cseq, tuple(contacts),
                    tuple(other), body)


def _call_id(value: str, offset: int) -> str:
    if _CALL_ID_RE.fullmatch(value) is None:
        raise _err("Call-ID", offset, f"bad Call-ID {value[:40]!r}")
    return value


# headers that appear once, and how each is read
_SINGLE = {
    "from": lambda v, o: parse_address(v, o, "From"),
    "to": lambda v, o: parse_address(v, o, "To"),
    "call-id": _call_id,
    "cseq": parse_cseq,
    "max-forwards": lambda v, o: _parse_int(v, o, "Max-Forwards"),
    "content-length": lambda v, o: _parse_int(v, o, "Content-Length"),
}


def _body(data: bytes, start: int, length: int | None, stream: bool, head_end: int) -> bytes:
    available = len(data) - start
    if length is None:
        if stream:
            raise _err("Content-Length", head_end, "Content-Length is mandatory on a stream "
                                                   "transport (§18.3)")
        return data[start:]
    if length > available:
        raise _err("Content-Length", head_end, f"Content-Length {length} but only "
                                               f"{available} body bytes (§18.3)")
    if stream and length < available:
        raise _err("Content-Length", head_end, f"Content-Length {length} but {available} "
                                               "body bytes in a framed message")
    return data[start:start + length]


# --------------------------------------------------------------------------- encode


def _check_value(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} value holds a line break: {value!r}")
    return value


def encode(message: Message, *, compact: bool = False) -> bytes:
    """Write ``message`` (RFC 3261 §7): start line, Via (one per line, in order),
    Max-Forwards, From, To, Call-ID, CSeq, Contact, the other headers, Content-Length from
    the body. ``compact=True`` writes the compact header names (§7.3.3)."""
    def name(n: str) -> str:
        return _SHORT.get(n.lower(), n) if compact else n

    if isinstance(message, Request):
        lines = [f"{message.method} {message.uri} {SIP_VERSION}"]
    else:
        lines = [f"{SIP_VERSION} {message.status} {_check_value('reason', message.reason)}"]
    via = name("Via")
    lines.extend(f"{via}: {v}" for v in message.via)
    if isinstance(message, Request) and message.max_forwards is not None:
        lines.append(f"Max-Forwards: {message.max_forwards}")
    lines.append(f"{name('From')}: {message.from_}")
    lines.append(f"{name('To')}: {message.to}")
    lines.append(f"{name('Call-ID')}: {_check_value('Call-ID', message.call_id)}")
    lines.append(f"CSeq: {message.cseq}")
    contact = name("Contact")
    lines.extend(f"{contact}: {c}" for c in message.contact)
    lines.extend(f"{name(n)}: {_check_value(n, v)}" for n, v in message.headers)
    lines.append(f"{name('Content-Length')}: {len(message.body)}")
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8") + message.body


def is_keepalive(data: bytes) -> bool:
    """A datagram of CRLFs only (RFC 5626 §3.5.1 keep-alive, §7.5 leading CRLF)."""
    return not data.strip(b"\r\n")


# --------------------------------------------------------------------------- stream framing


class StreamFramer:
    """Cut a byte stream (SIP over TCP) into whole messages by their Content-Length
    (RFC 3261 §18.3), holding partial data until the rest arrives.

    CRLFs before a message are skipped (§7.5; RFC 5626 §3.5.1 ping). A header section longer
    than ``max_message_length``, a missing or bad Content-Length, or a body above the limit
    raises :class:`CodecError` with the stream offset; the stream cannot be resynchronised,
    so the framer stays failed (every later :meth:`feed` raises it again) and the connection
    should be closed. Messages completed before the fault are returned first; the error
    comes with the next call (:attr:`error` shows it at once).
    """

    __slots__ = ("max_message_length", "_buf", "_offset", "_error", "_need")

    def __init__(self, max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH) -> None:
        self.max_message_length = max_message_length
        self._buf = bytearray()
        self._offset = 0  # stream position of self._buf[0]
        self._error: CodecError | None = None
        self._need = 0  # length of the message at the head of the buffer, once known

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def error(self) -> CodecError | None:
        return self._error

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the messages they complete, in order."""
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while pos < n:
            if not self._need:
                while pos < n and buf[pos] in (13, 10):  # CR, LF between messages
                    pos += 1
                if pos >= n:
                    break
                ends = _header_end(bytes(buf[pos:pos + self.max_message_length + 4]))
                if ends is None:
                    if n - pos > self.max_message_length:
                        self._error = _err("message", self._offset + pos,
                                           f"no end of headers within "
                                           f"{self.max_message_length} bytes")
                    break
                head_end, body_start = ends
                m = _CONTENT_LENGTH_LINE.search(bytes(buf[pos:pos + head_end]))
                if m is None or not m.group(1):
                    self._error = _err("Content-Length", self._offset + pos,
                                       "missing or bad Content-Length on a stream (§18.3)")
                    break
                total = body_start + int(m.group(1))
                if total > self.max_message_length:
                    self._error = _err("Content-Length", self._offset + pos + m.start(1),
                                       f"message of {total} bytes is above the limit of "
                                       f"{self.max_message_length}")
                    break
                self._need = total
            if n - pos < self._need:
                break
            out.append(bytes(buf[pos:pos + self._need]))
            pos += self._need
            self._need = 0
        del buf[:pos]
        self._offset += pos
        if self._error is not None and not out:
            raise self._error
        return out
