"""SIP (RFC 3261) for number-portability queries and redirects, sans-IO.

- :mod:`.uri`: sip/sips/tel URIs with the RFC 4694 ``rn``/``npdi`` parameters, and the
  NP redirect Contacts (:func:`~.uri.np_sip_uri`, :func:`~.uri.np_tel_uri`);
- :mod:`.message`: requests and responses, typed Via/From/To/Contact/CSeq, Content-Length
  framing for stream transports (:class:`~.message.StreamFramer`);
- :mod:`.transaction`: the INVITE client and server transactions of RFC 3261 §17 with their
  timers.
"""

from .message import (
    MAGIC_COOKIE,
    REASON_PHRASES,
    SIP_VERSION,
    Address,
    CSeq,
    Message,
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
from .uri import (
    AbsoluteUri,
    SipUri,
    TelephoneSubscriber,
    TelUri,
    Uri,
    digits_of,
    np_sip_uri,
    np_tel_uri,
    parse_subscriber,
    parse_uri,
)

__all__ = [
    "MAGIC_COOKIE", "REASON_PHRASES", "SIP_VERSION", "Address", "CSeq", "Message", "Method",
    "Request", "Response", "StreamFramer", "Via", "by_preference", "canonical_name", "decode",
    "encode", "is_keepalive", "make_response", "parse_address", "parse_via",
    "split_header_list", "AbsoluteUri", "SipUri", "TelephoneSubscriber", "TelUri", "Uri",
    "digits_of", "np_sip_uri", "np_tel_uri", "parse_subscriber", "parse_uri",
]
