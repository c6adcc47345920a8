"""SIP for the gateway: asyncio adapters around the sans-IO SIP of :mod:`protocols.sip`.

- :mod:`.transport`: SIP over UDP and TCP (Content-Length framing), one handler per message
  with the :class:`~.transport.Flow` to answer on;
- :mod:`.np_client`: :class:`~.np_client.SipNpClient`, number-portability queries toward
  operators' NP servers (INVITE, read the 302), with fail-over, timeouts and rate caps;
- :mod:`.redirect`: :class:`~.redirect.SipRedirectServer`, the redirect front end that
  answers softswitches' INVITEs with 302 + ``rn``/``npdi`` from a lookup callable;
- :mod:`.timers`: :class:`~.timers.TimerQueue`, one loop timer for many transactions.
"""

from .np_client import (
    NpClientStats,
    NpOutcome,
    NpResult,
    NpTarget,
    RnNetwork,
    RnTable,
    SipNpClient,
    TokenBucket,
)
from .redirect import (
    DecisionKind,
    Lookup,
    RedirectConfig,
    RedirectDecision,
    RedirectStats,
    SipRedirectServer,
)
from .transport import Flow, TcpConnection, TcpServer, TransportKind, UdpEndpoint, UdpFlow

__all__ = [
    "NpClientStats", "NpOutcome", "NpResult", "NpTarget", "RnNetwork", "RnTable", "SipNpClient",
    "TokenBucket", "DecisionKind", "Lookup", "RedirectConfig", "RedirectDecision",
    "RedirectStats", "SipRedirectServer", "Flow", "TcpConnection", "TcpServer",
    "TransportKind", "UdpEndpoint", "UdpFlow",
]
