"""Authentication, entitlement and per-customer limits of the lookup API, as aiohttp
middleware.

Every request under a protected prefix (``/v1/`` by default; ``public`` paths such as the
OpenAPI document are let through) must carry an API key, as ``Authorization: Bearer KEY`` or
``X-API-Key: KEY``. Then, in this order:

1. no key, or a key that is malformed, unknown, revoked or expired: **401**
   ``unauthenticated`` (with ``WWW-Authenticate: Bearer``);
2. a handler marked with :func:`requires` for a service the customer is not entitled to:
   **403** ``not-entitled`` (a handler whose service depends on the request calls
   :func:`ensure_entitled` itself);
3. the customer's token bucket is empty: **429** ``rate-limited`` with ``Retry-After`` (whole
   seconds until a token is back) and ``limit: "rate"``;
4. the customer already has ``inflight`` requests in progress: **429** ``rate-limited`` with
   ``Retry-After: 1`` and ``limit: "inflight"``.

The handler then finds the customer with :func:`customer_of`. :func:`install` adds the
problem middleware (outermost) and this one to an application:

>>> app = web.Application()
>>> install(app, customers, limiter, public={"/v1/openapi.json"})
>>> @requires("hlr")
... async def hlr(request):
...     customer = customer_of(request)
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from gateway.customers import MISS, SERVICES, Customers, Limiter, parse_key
from gateway.store import Customer

from .problems import ProblemError, ProblemType, problems_middleware

__all__ = [
    "CUSTOMERS", "LIMITER", "admission", "admission_now", "auth_middleware", "customer_of",
    "ensure_entitled", "install", "requires",
]

log = logging.getLogger(__name__)

CUSTOMERS = web.AppKey("hlrgw_customers", Customers)
LIMITER = web.AppKey("hlrgw_limiter", Limiter)
# request storage key of the customer (web.RequestKey where aiohttp has it)
_CUSTOMER: Any = (web.RequestKey("hlrgw_customer", Customer)  # type: ignore[attr-defined]
                  if hasattr(web, "RequestKey") else "hlrgw_customer")
_SERVICE_ATTR = "hlrgw_service"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Callable[..., Any])


def requires(service: str) -> Callable[[H], H]:
    """Mark a handler as a lookup of ``service`` (one of :data:`SERVICES`): the middleware
    answers 403 not-entitled to customers without it, before the request takes a token."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")

    def mark(handler: H) -> H:
        setattr(handler, _SERVICE_ATTR, service)
        return handler

    return mark


def customer_of(request: web.Request) -> Customer:
    """The authenticated customer of a request that passed the middleware."""
    try:  # (not request.get: Mapping.get's Python-level call around __getitem__)
        customer = request[_CUSTOMER]
    except KeyError:
        customer = None
    if customer is None:
        raise ProblemError(401, ProblemType.UNAUTHENTICATED, "this request is not "
                           "authenticated", headers={"WWW-Authenticate": "Bearer"})
    return customer


def not_entitled(customer: Customer, service: str) -> ProblemError:
    return ProblemError(403, ProblemType.NOT_ENTITLED,
                        f"customer {customer.name!r} is not entitled to the {service} service",
                        service=service)


def ensure_entitled(request: web.Request, service: str) -> Customer:
    """The request's customer; 403 not-entitled unless it may use ``service``."""
    customer = customer_of(request)
    if not customer.entitled(service):
        raise not_entitled(customer, service)
    return customer


def _key_of(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization")
    if auth:
        if auth.startswith("Bearer "):  # the usual spelling: what the general path gives
            return auth[7:].strip() or None
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return None
    key = request.headers.get("X-API-Key", "").strip()
    return key or None


def _unauthenticated(detail: str, error: str | None = None) -> ProblemError:
    challenge = 'Bearer realm="hlr-gateway"'
    if error:
        challenge += f', error="{error}"'
    return ProblemError(401, ProblemType.UNAUTHENTICATED, detail,
                        headers={"WWW-Authenticate": challenge})


def auth_middleware(customers: Customers, limiter: Limiter, *,
                    protected: Iterable[str] = ("/v1/",),
                    public: Iterable[str] = ()) -> Callable[..., Awaitable[web.StreamResponse]]:
    """The middleware (see the module docstring). ``protected``: path prefixes that need a
    key; ``public``: exact paths under them that do not."""
    admit = admission(customers, limiter, protected=protected, public=public)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        customer = await admit(request)
        if customer is None:
            return await handler(request)
        try:
            return await handler(request)
        finally:
            limiter.release(customer)

    return authenticate


def admission(customers: Customers, limiter: Limiter, *,
              protected: Iterable[str] = ("/v1/",), public: Iterable[str] = ()
              ) -> Callable[[web.Request], Awaitable[Customer | None]]:
    """What :func:`auth_middleware` does before the handler, for a middleware of its own:
    ``await admit(request)`` raises the 401, 403 or 429 :class:`ProblemError`, or answers
    the customer it admitted (``limiter.release(customer)`` once the request is answered),
    or None for a request that needs no key."""
    admit_now = admission_now(customers, limiter, protected=protected, public=public)

    async def admit(request: web.Request) -> Customer | None:
        customer = admit_now(request)
        if customer is MISS:
            customer = await customers.authenticate(_key_of(request))  # type: ignore[arg-type]
            return _admitted(request, customer, limiter)
        return customer

    return admit


def admission_now(customers: Customers, limiter: Limiter, *,
                  protected: Iterable[str] = ("/v1/",), public: Iterable[str] = ()
                  ) -> Callable[[web.Request], Customer | None]:
    """:func:`admission` without a coroutine: ``admit_now(request)`` answers as ``await
    admit(request)`` does when the key's customer is cached, else :data:`~gateway.
    customers.MISS` (then ``await admit(request)``, which reads the store)."""
    prefixes = tuple(protected)
    open_paths = frozenset(public)
    cached = customers.authenticate_cached

    def admit_now(request: web.Request) -> Customer | None:
        path = request.path
        if not path.startswith(prefixes) or path in open_paths:
            return None
        key = _key_of(request)
        if key is None:
            raise _unauthenticated("send your API key as 'Authorization: Bearer KEY' or "
                                   "'X-API-Key: KEY'")
        customer = cached(key)
        if customer is MISS:
            return MISS
        return _admitted(request, customer, limiter)

    return admit_now


def _admitted(request: web.Request, customer: Customer | None, limiter: Limiter
              ) -> Customer:
    if customer is None:
        key_id = parse_key(_key_of(request) or "")
        log.info("refused API key %s from %s", key_id or "(malformed)", request.remote)
        raise _unauthenticated("the API key is not valid (unknown, revoked or expired)",
                               "invalid_token")
    service = getattr(request.match_info.handler, _SERVICE_ATTR, None)
    if service is not None and not customer.entitled(service):
        raise not_entitled(customer, service)
    verdict = limiter.admit(customer)
    if not verdict.admitted:
        retry = verdict.retry_after_header
        if verdict.limit == "inflight":
            detail = (f"{customer.inflight} requests already in progress for "
                      f"{customer.name!r}: wait for one to finish")
        else:
            detail = (f"more than {customer.rate:g} requests a second (burst "
                      f"{customer.burst}) for {customer.name!r}")
        raise ProblemError(429, ProblemType.RATE_LIMITED, detail,
                           headers={"Retry-After": retry}, limit=verdict.limit,
                           retry_after=int(retry))
    request[_CUSTOMER] = customer
    return customer


def install(app: web.Application, customers: Customers, limiter: Limiter, *,
            protected: Iterable[str] = ("/v1/",), public: Iterable[str] = ()) -> None:
    """Add the problem middleware and the auth middleware to ``app`` (before it starts), and
    keep ``customers`` and ``limiter`` in it (``app[CUSTOMERS]``, ``app[LIMITER]``)."""
    app.middlewares.append(problems_middleware)
    app.middlewares.append(auth_middleware(customers, limiter, protected=protected,
                                           public=public))
    app[CUSTOMERS] = customers
    app[LIMITER] = limiter
