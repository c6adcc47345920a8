"""The SIP sections of the configuration: ``[sip_redirect]`` and its clients,
``[[routing_numbers]]``, and the rate cap of ``[[sip_targets]]``; each class of problem with
its file, line, key path and message, and the good case as the service reads it."""

from __future__ import annotations

from pathlib import Path

from gateway.config import check_file
from gateway.config.schema import SipContactScheme, SipTransport
from gateway.sip.settings import redirect_config
from tests.test_config import GOOD, line_of, one, problems, write

REDIRECT = """
[sip_redirect]
listen = "127.0.0.1"
port = 5062
transports = ["udp", "tcp"]
contact_scheme = "tel"
max_in_flight = 50
retry_after = 9
lookup_timeout = 3.0

  [[sip_redirect.clients]]
  customer = "carrier-a"
  networks = ["192.0.2.0/24", "198.51.100.7"]

  [[sip_redirect.clients]]
  customer = "carrier-b"
  networks = ["192.0.2.128/25", "2001:db8::/32"]
"""

TARGETS = """
[[sip_targets]]
name = "np1"
uri = "sip:np1.example.net:5060"
tps = 200
burst = 20

[[sip_targets]]
name = "np2"
uri = "sip:np2.example.net"
transport = "tcp"
"""

RNS = """
[[routing_numbers]]
routing_number = "447700130"
network = "EE"
mccmnc = "23430"

[[routing_numbers]]
routing_number = "+4917002"
network = "Vodafone GmbH"
"""


def test_good_sip_sections(tmp_path: Path) -> None:
    config, found = check_file(write(tmp_path, GOOD + REDIRECT + TARGETS + RNS))
    assert found == [] and config is not None
    sec = config.sip_redirect
    assert sec is not None and sec.port == 5062 and sec.contact_scheme is SipContactScheme.TEL
    assert sec.transports == (SipTransport.UDP, SipTransport.TCP)
    assert [c.customer for c in sec.clients] == ["carrier-a", "carrier-b"]
    rc = redirect_config(sec)
    assert rc.allow == {"192.0.2.0/24": "carrier-a", "198.51.100.7": "carrier-a",
                        "192.0.2.128/25": "carrier-b", "2001:db8::/32": "carrier-b"}
    assert (rc.udp_port, rc.tcp_port, rc.max_in_flight, rc.retry_after, rc.lookup_timeout,
            rc.contact_scheme) == (5062, 5062, 50, 9, 3.0, "tel")
    assert [(t.tps, t.burst) for t in config.sip_targets] == [(200.0, 20), (None, None)]
    assert [(r.routing_number, r.network, r.mccmnc) for r in config.routing_numbers] == \
        [("447700130", "EE", "23430"), ("4917002", "Vodafone GmbH", None)]
    udp_only = GOOD + REDIRECT.replace('["udp", "tcp"]', '["udp"]')
    config, found = check_file(write(tmp_path, udp_only))
    assert found == [] and redirect_config(config.sip_redirect).tcp_port is None


def test_off_unless_written(tmp_path: Path) -> None:
    config, found = check_file(write(tmp_path, GOOD))
    assert found == [] and config.sip_redirect is None and config.routing_numbers == ()


def test_redirect_clients_problems(tmp_path: Path) -> None:
    text = GOOD + REDIRECT.replace(
        '"198.51.100.7"]', '"198.51.100.7", "192.0.2.1/24", "not-a-net", "10.0.0.0/33"]'
    ).replace('customer = "carrier-b"', 'customer = "carrier b"').replace(
        '"2001:db8::/32"]', '"2001:db8::/32", "192.0.2.0/24"]')
    found = problems(tmp_path, text)
    p = one(found, "sip_redirect.clients[0].networks[2]")
    assert p.message == "'192.0.2.1/24' has host bits set: the network is 192.0.2.0/24"
    assert p.line == line_of(text, '"192.0.2.1/24"')
    assert one(found, "sip_redirect.clients[0].networks[3]").message.startswith(
        "'not-a-net' is not an IP address or network")
    assert one(found, "sip_redirect.clients[0].networks[4]").message.startswith(
        "'10.0.0.0/33' is not an IP address or network")
    assert one(found, "sip_redirect.clients[1].customer").message.startswith(
        "'carrier b' is not a customer name")
    dup = one(found, "sip_redirect.clients[1].networks[2]")
    assert dup.message.startswith("192.0.2.0/24 is already listed at ")
    assert "a source network belongs to one customer" in dup.message
    assert len(found) == 5


def test_redirect_listener_problems(tmp_path: Path) -> None:
    text = GOOD + REDIRECT.replace('["udp", "tcp"]', '["udp", "tls", "udp"]').replace(
        'listen = "127.0.0.1"', 'listen = "127.0.0.1.5"').replace(
        'contact_scheme = "tel"', 'contact_scheme = "sips"\ncontact_host = "bad host"')
    found = problems(tmp_path, text)
    assert one(found, "sip_redirect.transports[1]").message.startswith(
        "the SIP redirect front end listens on udp and tcp; SIP over TLS")
    assert one(found, "sip_redirect.transports[2]").message == \
        "transport 'udp' is listed twice"
    assert one(found, "sip_redirect.listen").message == \
        "'127.0.0.1.5' is not an IP address or host name"
    assert one(found, "sip_redirect.contact_scheme").message.startswith(
        "'sips' is not one of auto, sip, tel")
    assert one(found, "sip_redirect.contact_host").message == \
        "'bad host' is not an IP address or host name"
    assert len(found) == 5


def test_redirect_without_clients_and_port_clash(tmp_path: Path) -> None:
    text = GOOD + "\n[http]\nport = 5062\n" + \
        '\n[sip_redirect]\nport = 5062\nmax_in_flight = 0\ntransports = []\nsecret = 1\n'
    found = problems(tmp_path, text)
    assert one(found, "sip_redirect").message.startswith(
        "no [[sip_redirect.clients]]: every source would be refused (403)")
    assert one(found, "sip_redirect.port").message == \
        "127.0.0.1:5062 is already the [http] listener"
    assert one(found, "sip_redirect.max_in_flight").message == "0 is out of range 1..1000000"
    assert one(found, "sip_redirect.transports").message == "must not be empty"
    assert one(found, "sip_redirect.secret").message == "unknown key 'secret'"
    assert one(found, "sip_redirect.port").line == line_of(text, "port = 5062", 2)


def test_routing_numbers_problems(tmp_path: Path) -> None:
    text = GOOD + RNS + """
[[routing_numbers]]
routing_number = "447700130"
network = "EE again"

[[routing_numbers]]
routing_number = "0123"
network = "x"
mccmnc = "2343"

[[routing_numbers]]
routing_number = "4915"
network = " "
"""
    found = problems(tmp_path, text)
    p = one(found, "routing_numbers[2].routing_number")
    assert p.message.startswith("routing number 447700130 is already routing_numbers[0] at ")
    assert p.line == line_of(text, 'routing_number = "447700130"', 2)
    assert one(found, "routing_numbers[3].routing_number").message.startswith(
        "'0123' is not E.164 digits")
    assert one(found, "routing_numbers[4].network").message == "must not be empty"
    assert len(found) == 3  # routing_numbers[3] is dropped whole: its mccmnc is not checked
    found = problems(tmp_path, GOOD + RNS.replace('mccmnc = "23430"', 'mccmnc = "2343x"'))
    assert one(found, "routing_numbers[0].mccmnc").message == \
        "'2343x' is not an MCC+MNC (5 or 6 digits)"


def test_sip_target_rate_cap_problems(tmp_path: Path) -> None:
    text = GOOD + TARGETS.replace("tps = 200", "tps = 0").replace(
        'transport = "tcp"', 'transport = "tcp"\nburst = 5')
    found = problems(tmp_path, text)
    assert one(found, "sip_targets[0].tps").message == "must be greater than 0, not 0.0"
    assert one(found, "sip_targets[1].burst").message == \
        "burst applies to a TPS cap: set tps too"
    assert len(found) == 2
