"""The simulator's SIP number-portability server: softswitches (and the gateway's
:class:`~gateway.sip.np_client.SipNpClient`) dip a number with an INVITE and read the
``302 Moved Temporarily`` (RFC 4694 §5.3), answered from the same subscriber data as the
simulated HLRs (:func:`~simulators.model.resolve` with the run-time overrides):

==========================================  =============================================
the number                                  answer
==========================================  =============================================
ported into another network (``ported_to``)  302, Contact ``sip:+NUM;npdi;rn=+RN@...``: that
                                            network's ``routing_number``
in a range, not ported                      302, Contact ``sip:+NUM;npdi@...`` (no rn)
in no range, or ``status = "unknown"``      404 Not Found
==========================================  =============================================

The SIP side (transactions, retransmissions, CANCEL, OPTIONS) is the gateway's own
:class:`~gateway.sip.redirect.SipRedirectServer`; this module only supplies its lookup.
Faults (``[[faults]]``) do not apply to it.
"""

from __future__ import annotations

from gateway.sip.redirect import (
    RedirectClient,
    RedirectConfig,
    RedirectDecision,
    SipRedirectServer,
)

from .config import SipConfig
from .model import Status
from .state import SimState

__all__ = ["SimSipNpServer", "decide"]


def decide(state: SimState, number: str) -> RedirectDecision:
    """The NP answer for ``number`` (E.164 digits) from the simulator's state now."""
    sub = state.subscriber(number)
    if sub is None:
        return RedirectDecision.not_found("not in any network's ranges")
    if sub.status is Status.UNKNOWN:
        return RedirectDecision.not_found("no such subscriber")
    if sub.ported:
        rn = state.model.networks[sub.network].routing_number
        if rn:
            return RedirectDecision.ported(rn)
    return RedirectDecision.not_ported()


class SimSipNpServer:
    """The SIP NP server of a simulator: UDP and TCP on ``host`` (ports 0: free ones)."""

    def __init__(self, state: SimState, config: SipConfig, *, host: str = "127.0.0.1",
                 use_config_ports: bool = False) -> None:
        self.state = state
        self.config = config
        self.host = host
        udp = config.udp_port if use_config_ports else 0
        tcp = config.tcp_port if use_config_ports else 0
        self.server = SipRedirectServer(
            self._lookup,
            RedirectConfig(allow=["0.0.0.0/0", "::/0"], host=host, udp_port=udp, tcp_port=tcp,
                           lookup_timeout=None))

    async def _lookup(self, number: str, client: RedirectClient) -> RedirectDecision:
        return decide(self.state, number)

    async def start(self) -> None:
        await self.server.start()

    async def close(self) -> None:
        await self.server.close()

    @property
    def udp_port(self) -> int | None:
        return self.server.udp_port

    @property
    def tcp_port(self) -> int | None:
        return self.server.tcp_port

    @property
    def stats(self) -> object:
        return self.server.stats
