"""sip/sips/tel URIs (RFC 3261 §19.1, RFC 3966) and the RFC 4694 number-portability
parameters: parsing, writing back, the NP redirect Contacts, and fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.errors import CodecError, Layer
from protocols.sip.uri import (
    AbsoluteUri,
    SipUri,
    TelephoneSubscriber,
    TelUri,
    canonical_params,
    digits_of,
    np_sip_uri,
    np_tel_uri,
    parse_subscriber,
    parse_uri,
)


@pytest.mark.parametrize("text", [
    "sip:alice@atlanta.com",
    "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sip:alice@192.0.2.4",
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com",
    "sip:[2001:db8::10]:5070;lr",
    "sip:+447700900123;npdi;rn=+447700123@np.example;user=phone",
    "tel:+1-201-555-0123",
    "tel:7042;phone-context=example.com",
    "tel:+447700900123;npdi;rn=+447700123",
    "tel:+1-202-533-1234;npdi;rn=+1-202-544-0000",
    "tel:5550123;phone-context=+1-201;npdi;rn=544;rn-context=+1-202",
])
def test_round_trip(text: str) -> None:
    """RFC 3261 §19.1.3 examples and RFC 4694 forms parse and are written back unchanged."""
    assert str(parse_uri(text)) == text


def test_sip_uri_parts() -> None:
    u = parse_uri("sips:alice:pw@atlanta.com:5061;transport=TCP;lr?subject=x&a=b")
    assert isinstance(u, SipUri)
    assert (u.scheme, u.user, u.password, u.host, u.port) == ("sips", "alice", "pw",
                                                              "atlanta.com", 5061)
    assert u.transport == "tcp"
    assert u.has_param("lr") and u.param("lr") is None
    assert u.headers == (("subject", "x"), ("a", "b"))
    assert parse_uri("SIP:bob@b.example").scheme == "sip"


def test_rfc4694_in_sip_user_part() -> None:
    """RFC 4694 §4: rn and npdi sit in the telephone-subscriber, the user part of a SIP URI
    with user=phone (RFC 3261 §19.1.6), not among the URI parameters."""
    u = parse_uri("sip:+447700900123;npdi;rn=+447700123@np.example;user=phone")
    assert isinstance(u, SipUri)
    assert u.user_param == "phone"
    assert u.param("rn") is None
    sub = u.subscriber
    assert sub is not None
    assert sub.number == "+447700900123" and sub.is_global
    assert sub.npdi is True
    assert sub.rn == "+447700123"
    assert sub.digits == "447700900123"


def test_tel_semantics() -> None:
    t = parse_uri("tel:+1-202-533-1234;npdi;rn=+1-202-544-0000")
    assert isinstance(t, TelUri)
    assert t.subscriber.digits == "12025331234"
    assert t.subscriber.npdi and digits_of(t.subscriber.rn) == "12025440000"
    not_ported = parse_uri("tel:+12025331234;npdi").subscriber
    assert not_ported.npdi and not_ported.rn is None
    undipped = parse_uri("tel:+12025331234").subscriber
    assert not undipped.npdi and undipped.rn is None
    local = parse_uri("tel:5550123;phone-context=+1-201;npdi;rn=544;rn-context=+1-202")
    assert local.subscriber.rn == "544" and local.subscriber.rn_context == "+1-202"
    assert local.subscriber.phone_context == "+1-201" and not local.subscriber.is_global


def test_subscriber_without_user_phone() -> None:
    """Softswitches often leave user=phone out: a user part that is a global number, or
    bare digits, is still read as a number; a name is not."""
    assert parse_uri("sip:+447700900123@gw").subscriber.digits == "447700900123"
    assert parse_uri("sip:447700900123@gw").subscriber.digits == "447700900123"
    assert parse_uri("sip:alice@gw").subscriber is None
    assert parse_uri("sip:gw.example").subscriber is None


def test_np_contacts() -> None:
    """The redirect Contacts of the issue, byte for byte."""
    assert str(np_sip_uri("447700900123", "447700123", "np.example")) == \
        "sip:+447700900123;npdi;rn=+447700123@np.example;user=phone"
    assert str(np_sip_uri("+447700900123", "+447700123", "10.0.0.1", port=5070)) == \
        "sip:+447700900123;npdi;rn=+447700123@10.0.0.1:5070;user=phone"
    assert str(np_tel_uri("447700900123", "447700123")) == "tel:+447700900123;npdi;rn=+447700123"
    assert str(np_tel_uri("447700900123", None)) == "tel:+447700900123;npdi"
    assert str(np_sip_uri("447700900123", None, "h")) == "sip:+447700900123;npdi@h;user=phone"
    assert str(np_tel_uri("15550123", "544", rn_context="+1-202")) == \
        "tel:+15550123;npdi;rn=544;rn-context=+1-202"
    # they parse back with the same meaning
    sub = parse_uri(str(np_sip_uri("447700900123", "447700123", "np.example"))).subscriber
    assert (sub.digits, sub.npdi, sub.rn) == ("447700900123", True, "+447700123")
    with pytest.raises(ValueError):
        np_tel_uri("44abc", "447700123")
    with pytest.raises(ValueError):
        np_tel_uri("447700900123", "ab")  # "+ab": a global rn starts with 1 to 3 digits


def test_with_np_replaces_and_orders() -> None:
    """RFC 3966 §3 order: isub/ext first, then phone-context, then by name; a second dip
    replaces the first one's parameters."""
    sub = TelephoneSubscriber("+15550123", (("rn", "+1999"), ("ext", "22"), ("cic", "+1-6789")))
    dipped = sub.with_np("+12025440000")
    assert str(dipped) == "+15550123;ext=22;cic=+1-6789;npdi;rn=+12025440000"
    assert canonical_params((("z", None), ("phone-context", "x"), ("isub", "1"), ("a", "b"))) \
        == (("isub", "1"), ("phone-context", "x"), ("a", "b"), ("z", None))
    assert str(dipped.with_np(None)) == "+15550123;ext=22;cic=+1-6789;npdi"


def test_other_schemes_kept() -> None:
    u = parse_uri("mailto:alice@example.com")
    assert u == AbsoluteUri("mailto", "alice@example.com")
    assert str(u) == "mailto:alice@example.com"


@pytest.mark.parametrize("text, field", [
    ("alice@atlanta.com", "URI"),  # no scheme
    ("sip:", "URI"),
    ("sip:alice@", "host"),
    ("sip:alice@atlanta.com:99999", "port"),
    ("sip:alice@atlanta.com:50a", "port"),
    ("sip:al ice@atlanta.com", "URI"),
    ("sip:@atlanta.com", "user part"),
    ("sip:alice@[2001:db8::1", "host"),
    ("sip:alice@atlanta.com;=x", "uri-parameter"),
    ("sip:alice@atlanta.com?subject", "uri-header"),
    ("tel:", "URI"),
    ("tel:+", "telephone-subscriber"),
    ("tel:12345", "telephone-subscriber"),  # local number without phone-context
    ("tel:+4477;npdi=1", "telephone-subscriber"),  # npdi takes no value
    ("tel:+4477;rn", "telephone-subscriber"),  # rn needs a value
    ("tel:+4477;rn=12ab", "telephone-subscriber"),  # local rn without rn-context
    ("tel:+4477;rn=+44;;x", "telephone-subscriber"),
])
def test_malformed(text: str, field: str) -> None:
    with pytest.raises(CodecError) as err:
        parse_uri(text)
    assert err.value.layer is Layer.SIP
    assert err.value.field == field


def test_user_phone_with_bad_number_raises() -> None:
    u = parse_uri("sip:alice@gw;user=phone")
    with pytest.raises(CodecError) as err:
        _ = u.subscriber
    assert err.value.field == "user part" and err.value.offset == 4


def test_error_offsets() -> None:
    with pytest.raises(CodecError) as err:
        parse_uri("sip:alice@host:7x", 10)
    assert err.value.offset == 10 + len("sip:alice@host")
    with pytest.raises(CodecError) as err:
        parse_subscriber("+4477;npdi;rn=bad", 5)
    assert err.value.offset == 5 + len("+4477;npdi")


# --------------------------------------------------------------------------- properties

_numbers = st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True)


_hosts = st.from_regex(r"[a-z][a-z0-9]{0,10}(\.[a-z]{2,4})?", fullmatch=True)


@given(_numbers, st.one_of(st.none(), _numbers), _hosts,
       st.one_of(st.none(), st.integers(1, 65535)))
def test_np_contact_round_trip(number: str, rn: str | None, host: str, port: int | None) -> None:
    uri = np_sip_uri(number, rn, host, port=port)
    back = parse_uri(str(uri))
    assert back == uri
    sub = back.subscriber
    assert sub.npdi and sub.rn == rn and sub.number == number
    tel = np_tel_uri(number, rn)
    assert parse_uri(str(tel)) == tel


_uri_alphabet = st.sampled_from(list("sip:tel+@;=?&<>[]%.:-_ abc123AZ\"\\,/!~*'()$"))


@given(st.text(_uri_alphabet, max_size=60))
@settings(max_examples=600, deadline=None)
def test_fuzz_parse_uri_only_codec_error(text: str) -> None:
    """Whatever the text, parse_uri returns a URI or raises CodecError, nothing else."""
    try:
        uri = parse_uri(text)
    except CodecError as exc:
        assert exc.layer is Layer.SIP
        return
    if isinstance(uri, SipUri):
        try:
            _ = uri.subscriber
        except CodecError:
            pass


@given(st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_fuzz_parse_uri_any_text(text: str) -> None:
    try:
        parse_uri("sip:" + text)
        parse_uri("tel:" + text)
    except CodecError:
        pass
