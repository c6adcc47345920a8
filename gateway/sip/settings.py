"""The SIP parts of the configuration, turned into what :mod:`gateway.sip` runs with:

- :func:`rn_table`: ``[[routing_numbers]]`` as the NP client's :class:`~.np_client.RnTable`
  (a received ``rn`` -> the network it designates, longest prefix first);
- :class:`RoutingNumbers`: the same table read the other way, network -> routing number,
  for the redirect front end's 302 of a ported number whose answer carried no rn (an HLR
  answer names the subscription network by its IMSI, not by a routing number);
- :func:`redirect_config`: ``[sip_redirect]`` as a :class:`~.redirect.RedirectConfig`, its
  clients' networks as the allow-list, each network naming its customer.

The configuration was checked (:mod:`gateway.config.validate`), so nothing here reports
problems in it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from gateway.config.schema import (
    Config,
    RoutingNumberSection,
    SipRedirectSection,
    SipTransport,
)

from .np_client import RnNetwork, RnTable
from .redirect import RedirectConfig

__all__ = ["RoutingNumbers", "redirect_config", "rn_table"]


def rn_table(config: Config) -> RnTable:
    """``[[routing_numbers]]`` as an :class:`RnTable` (one per distinct table)."""
    return _rn_table(config.routing_numbers)


@functools.lru_cache(maxsize=8)
def _rn_table(entries: tuple[RoutingNumberSection, ...]) -> RnTable:
    return RnTable({e.routing_number: RnNetwork(e.network, e.mccmnc) for e in entries})


class RoutingNumbers:
    """Network -> the routing number that designates it: the first ``[[routing_numbers]]``
    entry naming the network, found by MCC+MNC when the answer gives one (the surest key),
    else by name (case-insensitive)."""

    __slots__ = ("_by_mccmnc", "_by_name")

    def __init__(self, entries: tuple[RoutingNumberSection, ...] = ()) -> None:
        self._by_mccmnc: dict[str, str] = {}
        self._by_name: dict[str, str] = {}
        for e in entries:
            if e.mccmnc:
                self._by_mccmnc.setdefault(e.mccmnc, e.routing_number)
            self._by_name.setdefault(e.network.casefold(), e.routing_number)

    def for_network(self, network: Mapping[str, Any] | None) -> str | None:
        """The routing number of ``network`` (an answer's network document: ``name``,
        ``mcc``, ``mnc``), or None."""
        if not network:
            return None
        mcc, mnc = network.get("mcc"), network.get("mnc")
        if mcc and mnc:
            found = self._by_mccmnc.get(f"{mcc}{mnc}")
            if found is not None:
                return found
        name = network.get("name")
        return self._by_name.get(name.casefold()) if isinstance(name, str) else None

    def __len__(self) -> int:
        return len(self._by_name)


def redirect_config(section: SipRedirectSection) -> RedirectConfig:
    """The :class:`RedirectConfig` of ``[sip_redirect]``: every client network allowed,
    mapped to its customer's name."""
    allow = {net: client.customer for client in section.clients for net in client.networks}
    port = section.port
    return RedirectConfig(
        allow=allow, host=section.listen,
        udp_port=port if SipTransport.UDP in section.transports else None,
        tcp_port=port if SipTransport.TCP in section.transports else None,
        max_in_flight=section.max_in_flight, retry_after=section.retry_after,
        lookup_timeout=section.lookup_timeout, contact_host=section.contact_host,
        contact_scheme=section.contact_scheme.value, udp_buffer=section.udp_buffer)
