"""SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), with the number-portability parameters
of RFC 4694, sans-IO.

- :class:`SipUri`: ``sip:user:password@host:port;uri-parameters?headers`` (RFC 3261 §19.1.1).
  When the user part is a telephone number (``user=phone``, §19.1.6, or simply a number that
  parses as one), :attr:`SipUri.subscriber` reads it as a :class:`TelephoneSubscriber`.
- :class:`TelUri`: ``tel:+447700900123;npdi;rn=+447700123`` (RFC 3966 §3).
- :class:`AbsoluteUri`: any other scheme, kept as text (RFC 3261 §25.1 ``absoluteURI``), so a
  Contact or Request-URI naming ``mailto:`` or ``urn:`` parses and is written back unchanged.

RFC 4694 (number portability) adds two parameters to a telephone-subscriber:

- ``npdi`` (§4, "NP database dip indicator"): a portability database has been consulted for
  this number. With ``rn`` the number is ported and ``rn`` routes to its network; ``npdi``
  without ``rn`` says the dip found the number not ported.
- ``rn=`` (§4, "routing number"): the number of the switch or network now serving the number.
  A global rn starts with ``+``; a local one carries ``rn-context``.

In a SIP URI these parameters sit in the *user part*, before the ``@``:
``sip:+447700900123;npdi;rn=+447700123@np.example;user=phone``. Parameters are written in the
order of RFC 3966 §3 (``isub``/``ext`` first, then ``phone-context``, then the rest in
lexical order), which is also what RFC 3261 §19.1.6 asks of a telephone-subscriber placed in a
SIP URI; so ``npdi`` comes before ``rn``.

Every parser raises :class:`~protocols.errors.CodecError` (layer SIP) on malformed input, with
the offset in the text it was given. Values are kept as they were written (escapes included);
``str(uri)`` writes a URI back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import CodecError, Layer

__all__ = [
    "Param",
    "TelephoneSubscriber",
    "SipUri",
    "TelUri",
    "AbsoluteUri",
    "Uri",
    "parse_uri",
    "parse_subscriber",
    "format_params",
    "find_param",
    "canonical_params",
    "np_sip_uri",
    "np_tel_uri",
    "digits_of",
]

Param = tuple[str, str | None]  # (name, value); value None for a flag such as ";npdi", ";lr"

_SIP = Layer.SIP
_VISUAL = str.maketrans("", "", "-.()")  # RFC 3966 §3 visual-separator

# RFC 3261 §25.1 character classes (escapes "%" HEX HEX are checked separately)
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|%[0-9A-Fa-f]{{2}})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|%[0-9A-Fa-f]{{2}})*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+\]")
_PARAM_CHARS_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|%[0-9A-Fa-f]{{2}})+")
_HEADER_CHARS_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|%[0-9A-Fa-f]{{2}})*")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
_NOT_IN_URI_RE = re.compile(r"[ \t\r\n<>\"]")
# RFC 3966 §3: global-number-digits = "+" *phonedigit DIGIT *phonedigit
_GLOBAL_RE = re.compile(r"\+[0-9\-.()]*[0-9][0-9\-.()]*")
# local-number-digits = *phonedigit-hex (HEXDIG / "*" / "#") *phonedigit-hex
_LOCAL_RE = re.compile(r"[0-9A-Fa-f*#\-.()]*[0-9A-Fa-f*#][0-9A-Fa-f*#\-.()]*")
# RFC 4694 §4: global-rn = "+" 1*3(DIGIT) *hex-phonedigit; local-rn = 1*hex-phonedigit
_GLOBAL_RN_RE = re.compile(r"\+[0-9]{1,3}[0-9A-Fa-f\-.()]*")
_LOCAL_RN_RE = re.compile(r"[0-9A-Fa-f\-.()]+")
_TEL_PNAME_RE = re.compile(r"[A-Za-z0-9\-]+")
# RFC 3966 §3: pvalue = 1*paramchar, the same characters as RFC 3261 §25.1 paramchar
_TEL_PVALUE_RE = _PARAM_CHARS_RE
# parameters of RFC 3966 §3 that come before the others, in this order
_FIRST_PARAMS = ("isub", "ext", "phone-context")


def _err(field: str, offset: int, reason: str) -> CodecError:
    return CodecError(_SIP, field, offset, reason)


def digits_of(number: str) -> str:
    """The number without visual separators (RFC 3966 §3: ``-``, ``.``, ``(``, ``)``) and
    without the leading ``+``: ``"+44-7700-900123"`` -> ``"447700900123"``."""
    return number.translate(_VISUAL).lstrip("+")


def find_param(params: tuple[Param, ...], name: str) -> str | None:
    """The value of parameter ``name`` (given in lower case; names compare
    case-insensitively), None when absent or a flag."""
    for n, v in params:
        if n.lower() == name:
            return v
    return None


def _has_param(params: tuple[Param, ...], name: str) -> bool:
    return any(n.lower() == name for n, _ in params)


def format_params(params: tuple[Param, ...]) -> str:
    """``;name=value;flag`` for each parameter, in the order given."""
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def canonical_params(params: tuple[Param, ...]) -> tuple[Param, ...]:
    """Telephone-subscriber parameters in the order of RFC 3966 §3 (and RFC 3261 §19.1.6):
    ``isub`` or ``ext``, then ``phone-context``, then the others by name."""
    first = [p for name in _FIRST_PARAMS for p in params if p[0].lower() == name]
    rest = sorted((p for p in params if p[0].lower() not in _FIRST_PARAMS),
                  key=lambda p: p[0].lower())
    return tuple(first + rest)


def _split_params(text: str, offset: int, field: str,
                  value_re: re.Pattern[str], name_re: re.Pattern[str]) -> tuple[Param, ...]:
    """Parse ``;a=b;c`` (``text`` starts at the first ``;``)."""
    out: list[Param] = []
    pos = 0
    n = len(text)
    while pos < n:
        if text[pos] != ";":
            raise _err(field, offset + pos, f"expected ';', found {text[pos]!r}")
        end = text.find(";", pos + 1)
        if end < 0:
            end = n
        item = text[pos + 1:end]
        name, eq, value = item.partition("=")
        if not name or name_re.fullmatch(name) is None:
            raise _err(field, offset + pos + 1, f"bad parameter name {name!r}")
        if eq:
            if not value or value_re.fullmatch(value) is None:
                raise _err(field, offset + pos + 2 + len(name),
                           f"bad value {value!r} for parameter {name!r}")
            out.append((name, value))
        else:
            out.append((name, None))
        pos = end
    return tuple(out)


# --------------------------------------------------------------------------- telephone numbers


@dataclass(slots=True, frozen=True)
class TelephoneSubscriber:
    """A telephone number with its parameters (RFC 3966 §3 ``telephone-subscriber``), as in a
    tel URI or in the user part of a SIP URI with ``user=phone`` (RFC 3261 §19.1.6).

    ``number`` is written as received (``+44-7700-900123`` keeps its separators);
    :attr:`digits` gives the bare digits. ``params`` keeps order and spelling.
    """

    number: str
    params: tuple[Param, ...] = ()

    @property
    def is_global(self) -> bool:
        """True for a global (E.164, ``+``) number, RFC 3966 §5.1.4."""
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without ``+`` and visual separators."""
        return digits_of(self.number)

    @property
    def npdi(self) -> bool:
        """RFC 4694 §4: a number-portability database dip has been done for this number."""
        return _has_param(self.params, "npdi")

    @property
    def rn(self) -> str | None:
        """RFC 4694 §4: the routing number, as written (``+447700123``), or None."""
        return find_param(self.params, "rn")

    @property
    def rn_context(self) -> str | None:
        """RFC 4694 §4: the context of a local routing number."""
        return find_param(self.params, "rn-context")

    @property
    def phone_context(self) -> str | None:
        """RFC 3966 §5.1.5: the context of a local number."""
        return find_param(self.params, "phone-context")

    def param(self, name: str) -> str | None:
        """The value of parameter ``name`` (case-insensitive), None when absent or a flag."""
        return find_param(self.params, name.lower())

    def with_np(self, rn: str | None, *, npdi: bool = True,
                rn_context: str | None = None) -> TelephoneSubscriber:
        """This number after a portability dip (RFC 4694 §4): any ``npdi``/``rn``/
        ``rn-context`` already present are replaced, and the parameters are put in the order
        of RFC 3966 §3. ``rn=None`` with ``npdi`` says "dipped, not ported"."""
        keep = [p for p in self.params if p[0].lower() not in ("npdi", "rn", "rn-context")]
        if npdi:
            keep.append(("npdi", None))
        if rn is not None:
            _check_rn(rn, rn_context)
            keep.append(("rn", rn))
            if rn_context is not None:
                keep.append(("rn-context", rn_context))
        return TelephoneSubscriber(self.number, canonical_params(tuple(keep)))

    def __str__(self) -> str:
        return self.number + format_params(self.params)


def _check_rn(rn: str, rn_context: str | None) -> None:
    if rn.startswith("+"):
        if _GLOBAL_RN_RE.fullmatch(rn) is None:
            raise ValueError(f"{rn!r} is not a global routing number (RFC 4694 §4)")
    elif _LOCAL_RN_RE.fullmatch(rn) is None or rn_context is None:
        raise ValueError(f"{rn!r} is not a routing number: a local rn needs digits and "
                         "an rn-context (RFC 4694 §4)")


def parse_subscriber(text: str, offset: int = 0,
                     field: str = "telephone-subscriber") -> TelephoneSubscriber:
    """Parse a telephone-subscriber (RFC 3966 §3 with the RFC 4694 §4 parameters).

    A global number needs ``+`` and at least one digit; a local one needs a
    ``phone-context`` (RFC 3966 §5.1.5). ``rn`` must be a global routing number, or a local
    one with ``rn-context`` (RFC 4694 §4); ``npdi`` takes no value.
    """
    semi = text.find(";")
    number = text if semi < 0 else text[:semi]
    if not number:
        raise _err(field, offset, "empty telephone number")
    is_global = number.startswith("+")
    if (_GLOBAL_RE if is_global else _LOCAL_RE).fullmatch(number) is None:
        raise _err(field, offset, f"{number!r} is not a telephone number (RFC 3966 §3)")
    params = () if semi < 0 else _split_params(text[semi:], offset + semi, field,
                                               _TEL_PVALUE_RE, _TEL_PNAME_RE)
    sub = TelephoneSubscriber(number, params)
    if not is_global and sub.phone_context is None:
        raise _err(field, offset, f"local number {number!r} has no phone-context "
                                  "(RFC 3966 §5.1.5)")
    pos = offset + len(number)
    for name, value in params:
        lname = name.lower()
        if lname == "npdi" and value is not None:
            raise _err(field, pos, "npdi takes no value (RFC 4694 §4)")
        if lname == "rn":
            if value is None:
                raise _err(field, pos, "rn needs a value (RFC 4694 §4)")
            try:
                _check_rn(value, sub.rn_context)
            except ValueError as exc:
                raise _err(field, pos, str(exc)) from None
        pos += 1 + len(name) + (0 if value is None else 1 + len(value))
    return sub


# --------------------------------------------------------------------------- URIs


@dataclass(slots=True, frozen=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI (RFC 3261 §19.1.1).

    ``user`` is the user part as written (it may hold ``;`` parameters of a
    telephone-subscriber); ``params`` are the URI parameters after the host (``transport``,
    ``user``, ``lr``, ``maddr``...); ``headers`` the ``?name=value`` pairs.
    """

    host: str
    user: str | None = None
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    scheme: str = "sip"
    password: str | None = None

    @property
    def user_param(self) -> str | None:
        """The ``user`` URI parameter (``phone``, ``ip``...), RFC 3261 §19.1.1."""
        return find_param(self.params, "user")

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, lower case, or None."""
        t = find_param(self.params, "transport")
        return t.lower() if t else None

    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` (case-insensitive), None when absent or a
        flag."""
        return find_param(self.params, name.lower())

    def has_param(self, name: str) -> bool:
        return _has_param(self.params, name.lower())

    @property
    def subscriber(self) -> TelephoneSubscriber | None:
        """The user part as a telephone number, or None when it is not one.

        With ``user=phone`` the user part must be a telephone-subscriber (RFC 3261 §19.1.6;
        a malformed one raises :class:`CodecError`). Without it, a user part that parses as
        a global number (``sip:+447700900123@...``) or as bare digits is read as one too,
        as softswitches often leave ``user=phone`` out.
        """
        if self.user is None:
            return None
        if (self.user_param or "").lower() == "phone":
            return parse_subscriber(self.user, len(self.scheme) + 1, "user part")
        head = self.user.split(";", 1)[0]
        if head.startswith("+") or (head.isdigit() and head.isascii()):
            try:
                if head.startswith("+"):
                    return parse_subscriber(self.user, len(self.scheme) + 1, "user part")
                return TelephoneSubscriber(head, _split_params(
                    self.user[len(head):], 0, "user part", _TEL_PVALUE_RE, _TEL_PNAME_RE))
            except CodecError:
                return None
        return None

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        out.append(format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{n}={v}" for n, v in self.headers))
        return "".join(out)


@dataclass(slots=True, frozen=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966 §3): a telephone-subscriber."""

    subscriber: TelephoneSubscriber
    scheme: str = "tel"

    @property
    def number(self) -> str:
        return self.subscriber.number

    def __str__(self) -> str:
        return f"{self.scheme}:{self.subscriber}"


@dataclass(slots=True, frozen=True)
class AbsoluteUri:
    """A URI of another scheme (RFC 3261 §25.1 ``absoluteURI``), kept as written."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


Uri = SipUri | TelUri | AbsoluteUri


def _parse_host(text: str, offset: int) -> tuple[str, int | None]:
    if text.startswith("["):
        close = text.find("]")
        if close < 0 or _IPV6_RE.fullmatch(text[:close + 1]) is None:
            raise _err("host", offset, f"bad IPv6 reference {text!r}")
        host, rest = text[:close + 1], text[close + 1:]
    else:
        colon = text.find(":")
        host, rest = (text, "") if colon < 0 else (text[:colon], text[colon:])
        if not host or _HOSTNAME_RE.fullmatch(host) is None:
            raise _err("host", offset, f"bad host {host!r}")
    if not rest:
        return host, None
    if rest[0] != ":" or not rest[1:].isdigit() or not rest[1:].isascii():
        raise _err("port", offset + len(host), f"bad port {rest!r}")
    port = int(rest[1:])
    if port > 65535:
        raise _err("port", offset + len(host) + 1, f"port {port} is above 65535")
    return host, port


# A well-formed SIP URI without escapes or headers in one match (the common case); anything
# else goes through _parse_sip's step-by-step checks, which name the faulty part and its
# offset.
_SIP_FAST_RE = re.compile(
    rf"(?:([{_UNRESERVED}&=+$,;?/]+)(?::([{_UNRESERVED}&=+$,]*))?@)?"
    r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?)"
    r"(?::([0-9]{1,5}))?"
    rf"((?:;[{_UNRESERVED}\[\]/:&+$]+(?:=[{_UNRESERVED}\[\]/:&+$]+)?)*)")


def _parse_sip(scheme: str, text: str, offset: int) -> SipUri:
    """``text`` is what follows ``scheme:``; ``offset`` its position."""
    m = _SIP_FAST_RE.fullmatch(text)
    if m is not None:
        user, password, host, port_text, params_text = m.groups()
        port = int(port_text) if port_text is not None else None
        if port is None or port <= 65535:
            params: tuple[Param, ...] = ()
            if params_text:
                params = tuple((n, v if eq else None) for n, eq, v in
                               (item.partition("=") for item in params_text[1:].split(";")))
            return SipUri(host, user, port, params, (), scheme, password)
    user = password = None
    at = text.find("@")
    pos = 0
    if at >= 0:
        userinfo = text[:at]
        user, colon, pw = userinfo.partition(":")
        if not user or _USER_RE.fullmatch(user) is None:
            raise _err("user part", offset, f"bad user part {user!r}")
        if colon:
            if _PASSWORD_RE.fullmatch(pw) is None:
                raise _err("password", offset + len(user) + 1, "bad password")
            password = pw
        pos = at + 1
    rest = text[pos:]
    q = rest.find("?")
    headers_text = None
    if q >= 0:
        rest, headers_text = rest[:q], rest[q + 1:]
    semi = rest.find(";")
    hostport = rest if semi < 0 else rest[:semi]
    host, port = _parse_host(hostport, offset + pos)
    params = ()
    if semi >= 0:
        params = _split_params(rest[semi:], offset + pos + semi, "uri-parameter",
                               _PARAM_CHARS_RE, _PARAM_CHARS_RE)
    headers: tuple[tuple[str, str], ...] = ()
    if headers_text is not None:
        hpos = offset + pos + len(rest) + 1
        items = []
        for item in headers_text.split("&"):
            name, eq, value = item.partition("=")
            if not name or not eq or _HEADER_CHARS_RE.fullmatch(name) is None \
                    or _HEADER_CHARS_RE.fullmatch(value) is None:
                raise _err("uri-header", hpos, f"bad URI header {item!r}")
            items.append((name, value))
            hpos += len(item) + 1
        headers = tuple(items)
    return SipUri(host, user, port, params, headers, scheme, password)


def parse_uri(text: str, offset: int = 0) -> Uri:
    """Parse a URI: ``sip:``/``sips:`` (RFC 3261 §19.1.1), ``tel:`` (RFC 3966 §3), or any
    other scheme kept as :class:`AbsoluteUri`. The scheme is case-insensitive and returned
    in lower case; ``offset`` is added to error offsets."""
    colon = text.find(":")
    if colon <= 0 or _SCHEME_RE.fullmatch(text[:colon]) is None:
        raise _err("URI", offset, f"no scheme in {text[:40]!r}")
    scheme = text[:colon].lower()
    rest = text[colon + 1:]
    if not rest:
        raise _err("URI", offset + colon + 1, "empty URI after the scheme")
    bad = _NOT_IN_URI_RE.search(rest)
    if bad is not None:
        raise _err("URI", offset + colon + 1 + bad.start(),
                   f"{bad.group()!r} is not allowed in a URI")
    if scheme in ("sip", "sips"):
        return _parse_sip(scheme, rest, offset + colon + 1)
    if scheme == "tel":
        return TelUri(parse_subscriber(rest, offset + colon + 1))
    return AbsoluteUri(scheme, rest)


# --------------------------------------------------------------------------- NP Contacts


def _np_subscriber(number: str, rn: str | None, npdi: bool,
                   rn_context: str | None) -> TelephoneSubscriber:
    if not number.startswith("+"):
        number = "+" + number
    if _GLOBAL_RE.fullmatch(number) is None:
        raise ValueError(f"{number!r} is not an E.164 number")
    if rn is not None and not rn.startswith("+") and rn_context is None:
        rn = "+" + rn
    return TelephoneSubscriber(number).with_np(rn, npdi=npdi, rn_context=rn_context)


def np_sip_uri(number: str, rn: str | None, host: str, *, npdi: bool = True,
               port: int | None = None, rn_context: str | None = None) -> SipUri:
    """The SIP URI of a portability answer (RFC 4694 §4 in a SIP URI, RFC 3261 §19.1.6):
    ``np_sip_uri("447700900123", "447700123", "np.example")`` is
    ``sip:+447700900123;npdi;rn=+447700123@np.example;user=phone``.

    ``number`` and a global ``rn`` get a ``+`` when written without one; ``rn=None`` gives
    the "dipped, not ported" form (``npdi`` alone).
    """
    sub = _np_subscriber(number, rn, npdi, rn_context)
    return SipUri(host, str(sub), port, (("user", "phone"),))


def np_tel_uri(number: str, rn: str | None, *, npdi: bool = True,
               rn_context: str | None = None) -> TelUri:
    """The tel URI of a portability answer (RFC 4694 §4):
    ``tel:+447700900123;npdi;rn=+447700123``."""
    return TelUri(_np_subscriber(number, rn, npdi, rn_context))
