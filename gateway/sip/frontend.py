"""The SIP redirect front end of ``hlrgw serve`` (``[sip_redirect]``): softswitches dip for
number portability with an INVITE and read the 302 (RFC 4694 §5.3), answered from the
gateway's own MNP lookup, the one ``GET /v1/mnp/{number}`` answers with (cache included).

**Who may query.** ``[[sip_redirect.clients]]`` lists source networks, each under a
customer account (``hlrgw customers add``). A source in no listed network gets ``403``
from :class:`~.redirect.SipRedirectServer` before anything else (the most specific
network decides the customer). Its lookups then run as that customer, as an HTTP request
with its API key would: refused with ``403`` when the customer does not exist, is disabled
or is not entitled to the ``mnp`` service; over its rate or in-flight limit
(:class:`~gateway.customers.Limiter`, shared with its HTTP requests), ``503`` with
Retry-After; each lookup recorded in the store under the customer (the audit of
``/v1/mnp``), with the customer's default cache age. Customers are read from the store
and kept :data:`CUSTOMER_TTL` seconds, so a customer added, changed or disabled by
``hlrgw customers`` applies within that time.

**Answers** (:func:`decide` and :func:`refusal`), from the MNP answer document:

=====================================================  ====================================
MNP answer                                             SIP answer
=====================================================  ====================================
ported, with a routing number (ATI mnpInfoRes, a SIP   302, Contact ``npdi;rn=+RN``
NP server, an MNP file), or ported to a network a
``[[routing_numbers]]`` entry names (by MCC+MNC, else
by name)
ported, and no routing number for its network          500 "No Routing Number" (a gap in
                                                       ``[[routing_numbers]]``; logged)
not ported                                             302, Contact ``npdi`` (no rn)
ported unknown (an HLR error naming no network:        302, Contact ``npdi`` (no rn), as an
absent, barred...)                                     NP database answers a number it holds
                                                       no porting record for
the number does not exist (unknownSubscriber; a SIP    404 Not Found (§21.4.5: definitive
NP server's 404/604)                                   for the network asked)
a number in no range of its country's plan, or an      604 Does Not Exist Anywhere
unknown country code                                   (§21.6.4: authoritative everywhere)
not a possible number (too short, too long...)         484 Address Incomplete
the route refuses the number (no route, reject)        403 "No Route"
the route's TPS cap or circuit breakers                503, Retry-After
no answer in time (upstream-timeout)                   504 Server Time-out
the network failed (upstream-failure: abort, link      502 Bad Gateway
down...)
=====================================================  ====================================

The server itself answers 503 with Retry-After beyond ``max_in_flight`` lookups and 504
when a lookup outlasts ``lookup_timeout`` (see :mod:`.redirect`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from gateway.cache import SingleFlight
from gateway.config.schema import Config, SipRedirectSection
from gateway.customers import CustomerError, Customers, Limiter
from gateway.http.problems import ProblemError, ProblemType
from gateway.store import Customer

from .redirect import RedirectClient, RedirectDecision, SipRedirectServer
from .settings import RoutingNumbers, redirect_config

__all__ = ["CUSTOMER_TTL", "LISTENER_KEYS", "RedirectFrontEnd", "decide", "refusal",
           "restart_keys"]

log = logging.getLogger(__name__)

#: seconds a customer read from the store is used before it is read again
CUSTOMER_TTL = 5.0
#: the invalid-number reasons that say no network anywhere can hold the number
_NOWHERE = frozenset({"not-in-numbering-plan", "invalid-country-code"})


def decide(doc: dict[str, Any], routing_numbers: RoutingNumbers) -> RedirectDecision:
    """The answer for an MNP answer document (see the module docstring)."""
    if doc.get("hlr_status") == "not_found":
        return RedirectDecision.not_found()
    ported = doc.get("ported")
    if not ported:  # False, or None: nobody said it was ported
        return RedirectDecision.not_ported()
    rn = doc.get("routing_number") or routing_numbers.for_network(doc.get("current_network"))
    if rn:
        return RedirectDecision.ported(rn)
    network = (doc.get("current_network") or {}).get("name") or "its network"
    log.warning("SIP redirect: %s is ported to %s, and no [[routing_numbers]] entry names "
                "that network: answered 500", doc.get("number", "a number")[:4] + "...",
                network)
    return RedirectDecision.error("No Routing Number")


def refusal(exc: ProblemError) -> RedirectDecision:
    """The answer for a lookup that ended in a problem (see the module docstring)."""
    slug = str(exc.type).rsplit("/", 1)[-1]
    if slug == ProblemType.INVALID_NUMBER:
        if exc.ext.get("reason") in _NOWHERE:
            return RedirectDecision.nowhere()
        return RedirectDecision.invalid()
    if slug == ProblemType.NO_ROUTE:
        return RedirectDecision.forbidden("No Route")
    if slug in (ProblemType.UNAVAILABLE, ProblemType.RATE_LIMITED):
        wait = exc.ext.get("retry_after")
        return RedirectDecision.unavailable(int(wait) if isinstance(wait, int | float)
                                            and wait >= 1 else 1)
    if slug == ProblemType.UPSTREAM_TIMEOUT:
        return RedirectDecision.timed_out()
    if slug == ProblemType.UPSTREAM_FAILURE:
        return RedirectDecision.failed()
    return RedirectDecision.error()


class RedirectFrontEnd:
    """``[sip_redirect]``: a :class:`SipRedirectServer` whose lookup is the gateway's MNP
    lookup, run as the customer of the source's network (see the module docstring).

    ``lookups`` is the :class:`~gateway.lookup.LookupService` (its :meth:`mnp`),
    ``customers`` reads the customers, ``limiter`` is the one the HTTP API uses."""

    def __init__(self, section: SipRedirectSection, lookups: Any, customers: Customers,
                 limiter: Limiter, *, routing_numbers: RoutingNumbers | None = None,
                 customer_ttl: float = CUSTOMER_TTL,
                 clock: Any = time.monotonic) -> None:
        self.section = section
        self.lookups = lookups
        self.customers = customers
        self.limiter = limiter
        self.routing_numbers = routing_numbers or RoutingNumbers()
        self.customer_ttl = customer_ttl
        self.clock = clock
        self.server = SipRedirectServer(self.lookup, redirect_config(section))
        self._known: dict[str, tuple[float, Customer | None]] = {}
        self._reads: SingleFlight[Customer | None] = SingleFlight()

    @classmethod
    def from_config(cls, config: Config, lookups: Any, customers: Customers,
                    limiter: Limiter) -> RedirectFrontEnd:
        assert config.sip_redirect is not None
        return cls(config.sip_redirect, lookups, customers, limiter,
                   routing_numbers=RoutingNumbers(config.routing_numbers))

    async def start(self) -> None:
        """Listen; warn about clients naming customers the store does not have (their
        sources are refused until the customer is added)."""
        await self.server.start()
        for client in self.section.clients:
            customer = await self._customer(client.customer)
            if customer is None or not customer.active or not customer.entitled("mnp"):
                log.warning("[sip_redirect] customer %r is %s: its networks (%s) get 403 until "
                            "it is", client.customer,
                            "unknown" if customer is None else
                            "disabled" if not customer.active else "not entitled to mnp",
                            ", ".join(client.networks))

    async def close(self) -> None:
        await self.server.close()

    def reconfigure(self, config: Config) -> None:
        """On reload: the clients, limits, timeouts, Contact settings and the
        routing-number table. The listener (``listen``, ``port``, ``transports``,
        ``udp_buffer``) needs a restart: :func:`restart_keys` refuses such a reload first."""
        assert config.sip_redirect is not None
        self.section = config.sip_redirect
        self.routing_numbers = RoutingNumbers(config.routing_numbers)
        self.server.reconfigure(redirect_config(config.sip_redirect))

    @property
    def udp_port(self) -> int | None:
        return self.server.udp_port

    @property
    def tcp_port(self) -> int | None:
        return self.server.tcp_port

    async def _customer(self, name: str) -> Customer | None:
        now = self.clock()
        known = self._known.get(name)
        if known is not None and now - known[0] < self.customer_ttl:
            return known[1]

        async def read() -> Customer | None:
            try:
                return await self.customers.get(name)
            except CustomerError:
                return None

        customer, _ = await self._reads.run(name, read)
        self._known[name] = (self.clock(), customer)
        return customer

    async def lookup(self, number: str, client: RedirectClient) -> RedirectDecision:
        """The :data:`~.redirect.Lookup` of the server."""
        if client.account is None:  # every allowed network names a customer
            return RedirectDecision.forbidden()
        customer = await self._customer(client.account)
        if customer is None or not customer.active:
            return RedirectDecision.forbidden("Unknown Customer" if customer is None
                                              else "Customer Disabled")
        if not customer.entitled("mnp"):
            return RedirectDecision.forbidden("Not Entitled")
        admission = self.limiter.admit(customer)
        if not admission.admitted:
            return RedirectDecision.unavailable(int(admission.retry_after_header),
                                                "Rate Limited")
        try:
            doc = await self.lookups.mnp("+" + number, customer)
        except ProblemError as exc:
            return refusal(exc)
        except asyncio.CancelledError:
            raise
        finally:
            self.limiter.release(customer)
        return decide(doc, self.routing_numbers)


#: the keys of [sip_redirect] bound at start
LISTENER_KEYS = ("listen", "port", "transports", "udp_buffer")


def restart_keys(old: Config, new: Config) -> list[tuple[tuple[str, ...], str]]:
    """The ``[sip_redirect]`` changes a reload cannot apply: turning the front end on or
    off, and its listener (:data:`LISTENER_KEYS`). Everything else reloads."""
    o, n = old.sip_redirect, new.sip_redirect
    if o is None and n is None:
        return []
    if o is None or n is None:
        return [(("sip_redirect",), "the SIP redirect front end is started or stopped with "
                 "the gateway")]
    return [(("sip_redirect", key), "listeners are bound at start")
            for key in LISTENER_KEYS if getattr(o, key) != getattr(n, key)]
