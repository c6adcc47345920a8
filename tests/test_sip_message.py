"""SIP message codec (RFC 3261 §7, §20): parsing (compact and long names, folding,
repeated and comma-separated headers, Via, name-addr/addr-spec, Contact q-values, CSeq),
writing, Content-Length framing on datagrams and streams, errors with field and offset,
and fuzzing (only CodecError ever leaves the parser)."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.errors import CodecError, Layer
from protocols.sip.message import (
    Address,
    CSeq,
    Method,
    Request,
    Response,
    StreamFramer,
    Via,
    by_preference,
    canonical_name,
    decode,
    encode,
    is_keepalive,
    make_response,
    parse_address,
    parse_via,
    split_header_list,
)
from protocols.sip.uri import SipUri, TelUri, np_sip_uri, parse_uri


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


INVITE = crlf("""\
INVITE sip:+447700900123@np.example;user=phone SIP/2.0
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport
Max-Forwards: 70
From: "Soft Switch" <sip:ss@10.0.0.1>;tag=1928301774
To: <sip:+447700900123@np.example;user=phone>
Call-ID: a84b4c76e66710@10.0.0.1
CSeq: 314159 INVITE
Contact: <sip:ss@10.0.0.1:5060>
Content-Length: 0

""")

REDIRECT = crlf("""\
SIP/2.0 302 Moved Temporarily
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK776asdhds;rport=5060;received=10.0.0.9
From: "Soft Switch" <sip:ss@10.0.0.1>;tag=1928301774
To: <sip:+447700900123@np.example;user=phone>;tag=a6c85cf
Call-ID: a84b4c76e66710@10.0.0.1
CSeq: 314159 INVITE
Contact: <sip:+447700900123;npdi;rn=+447700123@np.example;user=phone>
Content-Length: 0

""")

# RFC 4475 §3.1.1.1, "A Short Tortuous INVITE" (the body is 150 octets)
TORTUOUS_BODY = crlf("""\
v=0
o=mhandley 29739 7272939 IN IP4 192.0.2.3
s=-
c=IN IP4 192.0.2.4
t=0 0
m=audio 49217 RTP/AVP 0 12
m=video 3227 RTP/AVP 31
a=rtpmap:31 LPC
""")
TORTUOUS = crlf("""\
INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0
TO :
 sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n
from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>
  ;
  tag = 98asjd8
MaX-fOrWaRdS: 0068
Call-ID: wsinv.ndaksdj@192.0.2.1
Content-Length   : 150
cseq: 0009
  INVITE
Via  : SIP  /   2.0
 /UDP
    192.0.2.2;rport;branch=390skdjuw
s :
NewFangledHeader:   newfangled value
 continued newfangled value
UnknownHeaderWithUnusualValue: ;;,,;;,;
Content-Type: application/sdp
Route:
 <sip:services.example.com;lr;unknownwith=value;unknown-no-value>
v:  SIP  / 2.0  / TCP     spindle.example.com   ;
  branch  =   z9hG4bK9ikj8  ,
 SIP  /    2.0   / UDP  192.168.255.111   ; branch=
 z9hG4bK30239
m:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =
      newvalue ;
  secondparam ; q = 0.33

""") + TORTUOUS_BODY


def test_invite() -> None:
    msg = decode(INVITE)
    assert isinstance(msg, Request)
    assert msg.method == Method.INVITE
    assert msg.uri == SipUri("np.example", "+447700900123", None, (("user", "phone"),))
    (via,) = msg.via
    assert (via.transport, via.host, via.port) == ("UDP", "10.0.0.1", 5060)
    assert via.branch == "z9hG4bK776asdhds" and via.has_rport and via.rport is None
    assert msg.branch == "z9hG4bK776asdhds"
    assert msg.from_.display_name == "Soft Switch" and msg.from_.tag == "1928301774"
    assert msg.to.tag is None
    assert msg.call_id == "a84b4c76e66710@10.0.0.1"
    assert msg.cseq == CSeq(314159, "INVITE")
    assert msg.max_forwards == 70
    assert msg.contact[0].uri == SipUri("10.0.0.1", "ss", 5060)
    assert msg.headers == () and msg.body == b""


def test_redirect_response() -> None:
    msg = decode(REDIRECT)
    assert isinstance(msg, Response)
    assert (msg.status, msg.reason, msg.is_final) == (302, "Moved Temporarily", True)
    assert msg.via[0].rport == 5060 and msg.via[0].received == "10.0.0.9"
    assert msg.to.tag == "a6c85cf"
    sub = msg.contact[0].uri.subscriber
    assert (sub.digits, sub.npdi, sub.rn) == ("447700900123", True, "+447700123")


def test_rfc4475_short_tortuous_invite() -> None:
    """Folding everywhere, odd spacing and case, compact forms, quoted-pair escapes,
    unknown headers, Via in three places (one header, then a comma list)."""
    msg = decode(TORTUOUS)
    assert isinstance(msg, Request)
    assert msg.uri == SipUri("chair-dnrc.example.com", "vivekg", None,
                             (("unknownparam", None),))
    assert msg.to.uri == SipUri("chair-dnrc.example.com", "vivekg")
    assert msg.to.tag == "1918181833n"
    assert msg.from_.display_name == 'J Rosenberg \\"' and msg.from_.tag == "98asjd8"
    assert msg.max_forwards == 68
    assert msg.cseq == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.via] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239")]
    (contact,) = msg.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.q == 0.33 and contact.param("newparam") == "newvalue"
    assert contact.param("secondparam") is None
    assert msg.header("Subject") == "" and msg.header("s") == ""
    assert msg.header("newfangledheader") == "newfangled value continued newfangled value"
    assert msg.header("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.header("Route") == \
        "<sip:services.example.com;lr;unknownwith=value;unknown-no-value>"
    assert msg.header("c") == "application/sdp"
    assert msg.body == TORTUOUS_BODY and len(msg.body) == 150
    # what we write decodes to the same message
    assert decode(encode(msg)) == msg


def test_compact_and_long_forms_are_the_same_message() -> None:
    long_form = decode(INVITE)
    compact = encode(long_form, compact=True)
    assert b"\r\nv: SIP/2.0/UDP" in compact and b"\r\nf: " in compact
    assert b"\r\ni: " in compact and b"\r\nm: " in compact and b"\r\nl: 0" in compact
    assert decode(compact) == long_form
    assert canonical_name("i") == "Call-ID" and canonical_name("CALL-id") == "Call-ID"
    assert canonical_name("k") == "Supported" and canonical_name("X-Foo") == "X-Foo"
    assert canonical_name("cseq") == "CSeq" and canonical_name("www-authenticate") == \
        "WWW-Authenticate"


def test_repeated_and_comma_separated_headers_agree() -> None:
    """RFC 3261 §7.3.1: several header lines and one comma-separated line are the same."""
    base = INVITE.replace(b"Contact: <sip:ss@10.0.0.1:5060>\r\n", b"")
    one_line = base.replace(b"Content-Length", b'Contact: "A, the first" <sip:a,1@x;p=2>;q=0.1, '
                            b"<sip:b@y>;q=0.9, sip:c@z;q=0.5\r\nContent-Length")
    lines = base.replace(b"Content-Length", b'Contact: "A, the first" <sip:a,1@x;p=2>;q=0.1\r\n'
                         b"m: <sip:b@y>;q=0.9\r\nCONTACT: sip:c@z;q=0.5\r\nContent-Length")
    a, b = decode(one_line), decode(lines)
    assert a.contact == b.contact
    assert [c.q for c in a.contact] == [0.1, 0.9, 0.5]
    assert a.contact[0].display_name == "A, the first"
    assert a.contact[0].uri.user == "a,1"
    assert [str(c.uri) for c in by_preference(a.contact)] == ["sip:b@y", "sip:c@z",
                                                               "sip:a,1@x;p=2"]


def test_header_values_split_only_list_headers() -> None:
    msg = decode(INVITE.replace(b"Content-Length", b"Allow: INVITE, ACK\r\nallow: BYE\r\n"
                                b"Supported: timer,100rel\r\nk: path\r\n"
                                b'Subject: a, b\r\nWarning: 399 h "x, y", 399 h "z"\r\n'
                                b"Content-Length"))
    assert msg.header_values("Allow") == ["INVITE", "ACK", "BYE"]
    assert msg.header_values("supported") == ["timer", "100rel", "path"]
    assert msg.header_values("Subject") == ["a, b"]  # not a list header
    assert msg.header_values("Warning") == ['399 h "x, y"', '399 h "z"']
    assert msg.header("Allow") == "INVITE, ACK"
    assert msg.header("Nope") is None and msg.header_values("Nope") == []


def test_split_header_list() -> None:
    assert split_header_list('a, "b,c" <d,e>, f') == [(0, "a"), (3, '"b,c" <d,e>'), (16, "f")]
    with pytest.raises(CodecError) as err:
        split_header_list("a,,b", "Allow", 10)
    assert err.value.field == "Allow" and err.value.offset == 12
    with pytest.raises(CodecError):
        split_header_list('"open', "Contact")


def test_via_parsing() -> None:
    v = parse_via("SIP / 2.0 / tcp [2001:db8::9]:5061 ; branch = z9hG4bKx ; received=1.2.3.4;"
                  "rport=1234;ttl=16;maddr=224.2.0.1;x")
    assert (v.transport, v.host, v.port, v.protocol) == ("TCP", "[2001:db8::9]", 5061,
                                                         "SIP/2.0")
    assert (v.branch, v.received, v.rport) == ("z9hG4bKx", "1.2.3.4", 1234)
    assert v.param("ttl") == "16" and v.param("maddr") == "224.2.0.1" and v.param("x") is None
    assert str(parse_via(str(v))) == str(v)
    for bad in ("SIP/2.0 host", "HTTP/1.1/TCP h", "SIP/2.0/UDP", "SIP/2.0/UDP h:70000",
                "SIP/2.0/UDP h;branch", "SIP/2.0/UDP h;rport=x", "SIP/2.0/UDP h junk"):
        with pytest.raises(CodecError) as err:
            parse_via(bad)
        assert err.value.field == "Via"


def test_via_received_from() -> None:
    """§18.2.1: received when the sent-by host is not the source; RFC 3581 §4: rport."""
    v = Via("UDP", "10.0.0.1", 5060, (("branch", "z9hG4bK1"), ("rport", None)))
    stamped = v.received_from("192.0.2.7", 40000)
    assert str(stamped) == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=40000;" \
                           "received=192.0.2.7"
    plain = Via("UDP", "10.0.0.1", 5060, (("branch", "z9hG4bK1"),))
    assert plain.received_from("10.0.0.1", 5060) == plain
    assert plain.received_from("10.0.0.2", 5060).received == "10.0.0.2"


def test_address_forms() -> None:
    a = parse_address('  Bob Smith <sip:bob@b.example>;tag=x ; q=1')
    assert a.display_name == "Bob Smith" and a.tag == "x" and a.q == 1.0
    # addr-spec: every parameter belongs to the header (§20.10)
    b = parse_address("sip:bob@b.example;tag=y;expires=60")
    assert b.uri == SipUri("b.example", "bob") and b.tag == "y" and b.expires == 60
    c = parse_address("<tel:+447700900123;npdi>")
    assert isinstance(c.uri, TelUri) and c.uri.subscriber.npdi
    assert str(Address(parse_uri("sip:a@b"), 'say "hi"', (("tag", "1"),))) == \
        '"say \\"hi\\"" <sip:a@b>;tag=1'
    assert parse_address(str(Address(parse_uri("sip:a@b"), 'say "hi"'))).display_name == \
        'say "hi"'
    for bad in ("", "<sip:a@b", '"unterminated <sip:a@b>', "Bad<Name <sip:a@b>",
                "sip:a@b?x=y", "<sip:a@b>;q=2", "<sip:a@b>;q=0.5555", '"x" sip:a@b',
                "<sip:a@b> junk"):
        with pytest.raises(CodecError):
            parse_address(bad)


def test_make_response() -> None:
    """§8.2.6: Via, From, Call-ID and CSeq copied; To tagged; 100 copies Timestamp."""
    req = decode(INVITE.replace(b"Content-Length", b"Timestamp: 54\r\nContent-Length"))
    contact = Address(np_sip_uri("447700900123", "447700123", "np.example"))
    r = make_response(req, 302, to_tag="abc", contact=(contact,))
    assert (r.status, r.reason) == (302, "Moved Temporarily")
    assert r.via == req.via and r.from_ == req.from_ and r.call_id == req.call_id
    assert r.cseq == req.cseq and r.to.tag == "abc" and r.to.uri == req.to.uri
    assert r.header("Timestamp") is None
    trying = make_response(req, 100, to_tag="abc")
    assert trying.to.tag is None and trying.header("Timestamp") == "54"
    assert make_response(req, 604).reason == "Does Not Exist Anywhere"
    assert make_response(req, 499).reason == ""
    with pytest.raises(ValueError):
        make_response(req, 99)
    wire = encode(r)
    assert b"\r\nContact: <sip:+447700900123;npdi;rn=+447700123@np.example;user=phone>\r\n" \
        in wire
    assert decode(wire) == r


def test_encode_refuses_line_breaks() -> None:
    req = decode(INVITE)
    req.headers = (("X-Evil", "a\r\nVia: forged"),)
    with pytest.raises(ValueError):
        encode(req)


# --------------------------------------------------------------------------- framing


def test_datagram_content_length_rules() -> None:
    """§18.3: no Content-Length over UDP takes the rest; extra bytes are dropped; a
    Content-Length beyond the datagram is an error."""
    no_cl = INVITE.replace(b"Content-Length: 0\r\n", b"") + b"body"
    assert decode(no_cl).body == b"body"
    extra = INVITE.replace(b"Content-Length: 0", b"Content-Length: 2") + b"abcdef"
    assert decode(extra).body == b"ab"
    with pytest.raises(CodecError) as err:
        decode(INVITE.replace(b"Content-Length: 0", b"Content-Length: 9"))
    assert err.value.field == "Content-Length"
    with pytest.raises(CodecError) as err:
        decode(INVITE.replace(b"Content-Length: 0\r\n", b""), stream=True)
    assert err.value.field == "Content-Length"


def test_bare_lf_tolerated() -> None:
    msg = decode(INVITE.replace(b"\r\n", b"\n"))
    assert msg == decode(INVITE)


def test_stream_framer_partial_and_many() -> None:
    body_msg = INVITE.replace(b"Content-Length: 0", b"Content-Length: 5") + b"hello"
    stream = b"\r\n\r\n" + INVITE + body_msg + b"\r\n" + REDIRECT
    for cut in range(len(stream) + 1):
        f = StreamFramer()
        frames = f.feed(stream[:cut]) + f.feed(stream[cut:])
        assert frames == [INVITE, body_msg, REDIRECT], cut
        assert f.buffered == 0
    f = StreamFramer()
    frames = []
    for i in range(len(stream)):
        frames += f.feed(stream[i:i + 1])
    assert frames == [INVITE, body_msg, REDIRECT]
    assert decode(frames[1], stream=True).body == b"hello"


def test_stream_framer_errors_stick_and_keep_earlier_messages() -> None:
    f = StreamFramer()
    bad = INVITE.replace(b"Content-Length: 0\r\n", b"")
    assert f.feed(INVITE + bad) == [INVITE]
    assert f.error is not None and f.error.field == "Content-Length"
    assert f.error.offset == len(INVITE)
    with pytest.raises(CodecError):
        f.feed(b"more")
    f = StreamFramer(max_message_length=200)
    with pytest.raises(CodecError) as err:
        f.feed(b"INVITE " + b"x" * 300)
    assert err.value.field == "message"
    f = StreamFramer(max_message_length=400)
    with pytest.raises(CodecError) as err:
        f.feed(INVITE.replace(b"Content-Length: 0", b"Content-Length: 99999"))
    assert err.value.field == "Content-Length"


def test_keepalive() -> None:
    assert is_keepalive(b"\r\n\r\n") and is_keepalive(b"\r\n")
    assert not is_keepalive(INVITE)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("raw, field, offset", [
    (b"INVITE sip:a@b SIP/2.0\r\n", "message", 24),  # no empty line
    (b"\r\n\r\n", "start line", 0),
    (b"INVITE sip:a@b\r\n\r\n", "start line", 0),
    (b"INVITE sip:a@b SIP/3.0\r\n\r\n", "SIP-Version", 15),
    (b"INV@TE sip:a@b SIP/2.0\r\n\r\n", "method", 0),
    (b"INVITE a@b SIP/2.0\r\n\r\n", "URI", 7),
    (b"SIP/2.0 3020 Moved\r\n\r\n", "Status-Code", 8),
    (b"SIP/2.0 099 Early\r\n\r\n", "Status-Code", 8),
    (b"HTTP/1.1 200 OK\r\n\r\n", "method", 0),
])
def test_malformed_start_line(raw: bytes, field: str, offset: int) -> None:
    with pytest.raises(CodecError) as err:
        decode(raw)
    assert (err.value.layer, err.value.field, err.value.offset) == (Layer.SIP, field, offset)


def _header_offset(raw: bytes, marker: bytes) -> int:
    return raw.index(marker)


@pytest.mark.parametrize("old, new, field", [
    (b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE", "CSeq"),  # §8.1.1.5
    (b"CSeq: 314159 INVITE", b"CSeq: 2147483648 INVITE", "CSeq"),
    (b"CSeq: 314159 INVITE", b"CSeq: many INVITE", "CSeq"),
    (b"Max-Forwards: 70", b"Max-Forwards: lots", "Max-Forwards"),
    (b"Call-ID: a84b4c76e66710@10.0.0.1", b"Call-ID: a b", "Call-ID"),
    (b"Content-Length: 0", b"Content-Length: -1", "Content-Length"),
    (b"To: <sip:+447700900123@np.example;user=phone>", b"To: <sip:+4477@>", "host"),
    (b"Contact: <sip:ss@10.0.0.1:5060>", b"Contact: *", "Contact"),
    (b"Max-Forwards: 70", b"Max Forwards: 70", "header"),
    (b"Max-Forwards: 70", b"Max-Forwards 70", "header"),
])
def test_malformed_headers(old: bytes, new: bytes, field: str) -> None:
    raw = INVITE.replace(old, new)
    with pytest.raises(CodecError) as err:
        decode(raw)
    assert err.value.field == field
    line = raw.index(new)
    assert line <= err.value.offset <= line + len(new)


def test_single_header_twice() -> None:
    raw = INVITE.replace(b"Call-ID", b"i: other@x\r\nCall-ID")
    with pytest.raises(CodecError) as err:
        decode(raw)
    assert err.value.field == "Call-ID" and "more than once" in err.value.reason
    assert err.value.offset == raw.index(b"Call-ID")


@pytest.mark.parametrize("drop", [b"Via", b"From", b"To", b"Call-ID", b"CSeq"])
def test_mandatory_headers(drop: bytes) -> None:
    lines = [ln for ln in INVITE.split(b"\r\n") if not ln.startswith(drop + b":")]
    with pytest.raises(CodecError) as err:
        decode(b"\r\n".join(lines))
    assert err.value.field == drop.decode()
    assert "missing" in err.value.reason


def test_offsets_count_bytes_with_utf8() -> None:
    """Display names may be UTF-8; error offsets are still bytes from the message start."""
    raw = INVITE.replace(b'"Soft Switch"', '"Zürich Ü"'.encode()).replace(
        b"CSeq: 314159 INVITE", b"CSeq: x INVITE")
    with pytest.raises(CodecError) as err:
        decode(raw)
    assert err.value.offset == raw.index(b"x INVITE")
    ok = decode(INVITE.replace(b'"Soft Switch"', '"Zürich"'.encode()))
    assert ok.from_.display_name == "Zürich"
    with pytest.raises(CodecError) as err:
        decode(INVITE.replace(b"Soft", b"S\xffft"))
    assert err.value.offset == INVITE.index(b"Soft") + 1


# --------------------------------------------------------------------------- properties

_token = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9.\-]{0,12}", fullmatch=True)
_number = st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True)


@st.composite
def messages(draw) -> Request | Response:
    number = draw(_number)
    host = draw(st.from_regex(r"[a-z]{1,8}\.example|10\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}",
                              fullmatch=True))
    ruri = parse_uri(f"sip:+{number}@{host};user=phone")
    vias = tuple(Via(draw(st.sampled_from(["UDP", "TCP"])), host,
                     draw(st.one_of(st.none(), st.integers(1, 65535))),
                     (("branch", "z9hG4bK" + draw(_token)),) +
                     draw(st.sampled_from([(), (("rport", None),), (("received", "1.2.3.4"),)])))
                 for _ in range(draw(st.integers(1, 3))))
    from_ = Address(parse_uri(f"sip:{draw(_token)}@{host}"),
                    draw(st.one_of(st.none(), st.text(max_size=12).filter(
                        lambda s: "\r" not in s and "\n" not in s))),
                    (("tag", draw(_token)),))
    to = Address(ruri, None, draw(st.sampled_from([(), (("tag", "t1"),)])))
    call_id = draw(_token) + "@" + host
    contacts = tuple(Address(np_sip_uri(number, draw(st.one_of(st.none(), _number)), host),
                             None, (("q", draw(st.sampled_from(["0", "0.5", "1", "0.25"]))),))
                     for _ in range(draw(st.integers(0, 3))))
    headers = tuple(draw(st.lists(st.tuples(st.sampled_from(["Subject", "Retry-After",
                                                             "X-Custom", "Allow"]),
                                            st.from_regex(r"[a-z0-9]([a-z0-9 ]{0,10}[a-z0-9])?",
                                                          fullmatch=True)), max_size=3)))
    body = draw(st.binary(max_size=40))
    if draw(st.booleans()):
        return Request(Method.INVITE, ruri, vias, from_, to, call_id,
                       CSeq(draw(st.integers(0, 2**31 - 1)), "INVITE"),
                       draw(st.integers(0, 255)), contacts, headers, body)
    status = draw(st.sampled_from([100, 180, 302, 404, 484, 503, 604]))
    return Response(status, draw(st.sampled_from(["OK", "Moved Temporarily", "x y z", ""])),
                    vias, from_, to, call_id, CSeq(draw(st.integers(0, 2**31 - 1)), "INVITE"),
                    contacts, headers, body)


@given(messages(), st.booleans())
@settings(max_examples=300, deadline=None)
def test_round_trip(msg: Request | Response, compact: bool) -> None:
    wire = encode(msg, compact=compact)
    assert decode(wire) == msg
    assert decode(wire, stream=True) == msg
    assert StreamFramer().feed(b"\r\n" + wire + wire) == [wire, wire]


_SAMPLES = [INVITE, REDIRECT, TORTUOUS]
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_codec_error(data: bytes, stream: bool = False) -> None:
    try:
        decode(data, stream=stream)
    except CodecError as exc:
        assert exc.layer is Layer.SIP
        assert 0 <= exc.offset <= len(data)


@given(st.binary(max_size=400))
@FUZZ
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_codec_error(data)
    _only_codec_error(data, stream=True)


@given(st.sampled_from(_SAMPLES), st.data())
@FUZZ
def test_fuzz_mutations(sample: bytes, data) -> None:
    """Truncations, byte flips, insertions and deletions of real messages."""
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    raw = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 6))):
        op = rnd.randrange(4)
        pos = rnd.randrange(len(raw)) if raw else 0
        if op == 0:
            del raw[pos:]
        elif op == 1 and raw:
            raw[pos] = rnd.randrange(256)
        elif op == 2:
            raw[pos:pos] = bytes([rnd.choice(b" \t\r\n:;,<>\"\\@=/0%")])
        elif raw:
            del raw[pos]
    _only_codec_error(bytes(raw))
    _only_codec_error(bytes(raw), stream=True)


@given(st.lists(st.sampled_from(_SAMPLES + [b"\r\n", b"garbage\r\n\r\n"]), max_size=5),
       st.lists(st.integers(1, 80), min_size=1, max_size=30))
@FUZZ
def test_fuzz_stream_framer(parts: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(parts)
    f = StreamFramer()
    pos = 0
    i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        i += 1
        try:
            for frame in f.feed(stream[pos:pos + n]):
                _only_codec_error(frame, stream=True)
        except CodecError as exc:
            assert exc.layer is Layer.SIP
            break
        pos += n
