"""The running gateway: the configuration file, the :class:`~gateway.engine.Engine`, the trace
manager and the listeners: the admin API, and the HTTP lookup API (:mod:`gateway.http.app`)
with its store, cache, customers and batch jobs when the configuration has an ``[http]``
section (a signalling-only gateway, such as the walkthrough of docs/operations.md, has none),
and the SIP redirect front end for softswitches when it has a ``[sip_redirect]`` section
(:mod:`gateway.sip.frontend`: the same MNP lookup, store, cache and customers).

:meth:`Service.run` loads and checks the file (an invalid one raises
:class:`~gateway.config.ConfigInvalid` and nothing starts), starts everything, reloads on
SIGHUP and stops cleanly on SIGINT or SIGTERM. :meth:`Service.reload` re-reads the same file:
a bad file, or one that changes a setting only a restart can change, is refused and the
running configuration stays.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.admin import AdminApi
from gateway.config import Config, ConfigInvalid, load_config, read_document
from gateway.config.schema import AdminSection, TlsSection
from gateway.engine import Engine, ReloadReport, restart_problems
from gateway.trace import TraceManager

__all__ = ["Listener", "Service", "ServiceError", "admin_token", "setup_logging"]

log = logging.getLogger(__name__)

#: gc.set_threshold() once serving (see Service.run): young collections every 50,000 net
#: allocations of container objects; a middle one every 20 of those, a full one every 10 of
#: those (CPython: 700, 10, 10)
GC_THRESHOLD = (50_000, 20, 10)


class ServiceError(RuntimeError):
    """The service cannot start (e.g. no admin token, a port in use)."""


def admin_token(section: AdminSection, env: Mapping[str, str]) -> str:
    """The admin API's token: ``token_env``'s variable when set, else ``token``."""
    if section.token_env:
        value = env.get(section.token_env, "")
        if value:
            if len(value) < 16:
                raise ServiceError(f"the admin token in ${section.token_env} needs at least "
                                   "16 characters")
            return value
    if section.token:
        return section.token
    raise ServiceError(f"no admin token: set the environment variable "
                       f"{section.token_env or 'named by [admin] token_env'} (or [admin] token)")


def _ssl(tls: TlsSection | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls.cert, tls.key)
    return ctx


def setup_logging(config: Config, stream=None) -> None:
    """Root logging per ``[logging]``: level, and JSON lines or console text, through
    structlog with request ids and masked numbers (:mod:`gateway.logs`)."""
    from gateway.logs import setup_logging as setup

    setup(config.logging.level.value, config.logging.format.value, stream)


def http_configured(config: Config) -> bool:
    """Whether the configuration file writes an ``[http]`` section."""
    if not config.path:
        return True
    try:
        return "http" in read_document(config.path).data
    except Exception:  # pragma: no cover - the file was just read
        return True


@dataclass(slots=True)
class Listener:
    """One HTTP listener of the service."""

    name: str
    app: web.Application
    host: str
    port: int
    tls: TlsSection | None = None
    runner: web.AppRunner | None = None
    bound_port: int | None = None


def _service_restart_only(old: Config, new: Config) -> list[tuple[tuple[str, ...], str]]:
    out = []
    for key in ("admin", "http", "sip"):
        o, n = getattr(old, key), getattr(new, key)
        for f in ("listen", "port", "tls"):
            if getattr(o, f) != getattr(n, f):
                out.append(((key, f), "listeners are bound at start"))
    if old.storage != new.storage:
        out.append((("storage", "url"), "the store is opened at start"))
    if old.cache != new.cache:
        out.append((("cache",), "the cache is opened at start"))
    if old.traces.directory != new.traces.directory:
        out.append((("traces", "directory"), "the trace directory is set at start"))
    return out


class Service:
    """See the module docstring."""

    def __init__(self, config_path: str | os.PathLike[str], *,
                 env: Mapping[str, str] | None = None, log_stream=None,
                 http: bool | None = None) -> None:
        """``http``: run the lookup API (None: when the file has an ``[http]`` section)."""
        self.config_path = os.fspath(config_path)
        self.env = env if env is not None else os.environ
        self.log_stream = log_stream
        self.http = http
        self.engine: Engine | None = None
        self.traces: TraceManager | None = None
        self.admin: AdminApi | None = None
        self.listeners: list[Listener] = []
        self.store: Any = None
        self.cache: Any = None
        self.lookups: Any = None  # gateway.lookup.LookupService
        self.customers: Any = None
        self.batch: Any = None
        self.limiter: Any = None  # gateway.customers.Limiter, shared by HTTP and SIP
        self.sip_redirect: Any = None  # gateway.sip.frontend.RedirectFrontEnd
        self._stop = asyncio.Event()
        self._reloading: asyncio.Task[None] | None = None

    @property
    def config(self) -> Config:
        assert self.engine is not None
        return self.engine.config

    def add_listener(self, listener: Listener) -> None:
        """Serve another application (the HTTP lookup API) beside the admin API."""
        self.listeners.append(listener)

    async def start(self, wait_up: float = 0.0) -> None:
        """Load the file (raises ConfigInvalid), start the engine and the listeners."""
        config = load_config(self.config_path)
        token = admin_token(config.admin, self.env)
        setup_logging(config, self.log_stream)
        engine = Engine(config)
        await engine.start(wait_up=wait_up)
        self.engine = engine
        self.traces = TraceManager(engine, config.traces.directory,
                                   expire_after=config.traces.expire_after,
                                   max_seconds=config.traces.max_seconds)
        try:
            self.traces.start_sweeping()
        except OSError as exc:
            log.warning("trace directory: %s", exc)
        self.admin = AdminApi(engine, self.traces, token, reload=self.reload,
                              metrics_need_token=config.admin.metrics_need_token)
        self.listeners.insert(0, Listener("admin", self.admin.app(), config.admin.listen,
                                          config.admin.port, config.admin.tls))
        serve_http = self.http if self.http is not None else http_configured(config)
        if serve_http or config.sip_redirect is not None:
            try:
                await self._start_lookup_api(config, engine, serve_http)
            except BaseException:
                await self.stop()
                raise
        try:
            for listener in self.listeners:
                await self._bind(listener)
            if config.sip_redirect is not None:
                await self._start_sip_redirect(config)
        except OSError as exc:
            await self.stop()
            raise ServiceError(f"cannot listen: {exc}") from exc
        api = self.port_of("http")
        log.info("gateway %s up: %d association(s), %d route(s); admin API on %s:%s; %s",
                 config.node.name, len(config.associations), len(config.routes),
                 config.admin.listen, self.listeners[0].bound_port,
                 f"lookup API on {config.http.listen}:{api}" if api is not None
                 else "no lookup API (no [http] section)")

    async def _start_lookup_api(self, config: Config, engine: Engine,
                                serve_http: bool = True) -> None:
        """The store, the cache, customers, batch jobs and (``serve_http``) the lookup
        API's listener."""
        from gateway.batch import BatchManager
        from gateway.cache import CacheError, open_cache
        from gateway.customers import Customers, Limiter
        from gateway.http.app import build_app
        from gateway.lookup import LookupService, describe
        from gateway.store import StoreError, open_store

        base = os.path.dirname(os.path.abspath(config.path)) if config.path else None
        try:
            self.store = await open_store(config.storage.url, base)
        except StoreError as exc:
            raise ServiceError(f"cannot open the store {config.storage.url}: {exc}") from exc
        try:
            self.cache = open_cache(config.cache.url)
        except CacheError as exc:
            raise ServiceError(str(exc)) from exc
        if self.cache.kind == "redis" and not await self.cache.ping():
            log.warning("the redis cache at %s does not answer yet; lookups go to the "
                        "network until it does", config.cache.url)
        self.lookups = LookupService(engine, self.store, self.cache, ttl=config.cache.ttl)
        self.customers = Customers(self.store)
        limiter = self.limiter = Limiter()
        self.batch = BatchManager(self.store, self.lookups.lookup, limiter,
                                  node=config.node.name, describe=describe)
        admin = self.admin
        assert admin is not None
        for metric in self.lookups.metrics.collectors():
            admin.registry.register(metric)  # the admin API's /metrics shows them too

        def metrics_token() -> str | None:
            return admin.token if admin.metrics_need_token else None

        app = build_app(self.lookups, self.customers, limiter, batch=self.batch,
                        store=self.store, metrics_registries=(admin.registry,),
                        metrics_token=metrics_token, started_at=time.time())
        if serve_http:
            self.listeners.append(Listener("http", app, config.http.listen, config.http.port,
                                           config.http.tls))

    async def _start_sip_redirect(self, config: Config) -> None:
        """``[sip_redirect]``: the SIP redirect front end on the lookup service."""
        from gateway.sip.frontend import RedirectFrontEnd

        self.sip_redirect = RedirectFrontEnd.from_config(config, self.lookups, self.customers,
                                                         self.limiter)
        await self.sip_redirect.start()
        log.info("SIP redirect front end on %s: udp %s, tcp %s", config.sip_redirect.listen,
                 self.sip_redirect.udp_port, self.sip_redirect.tcp_port)

    async def _bind(self, listener: Listener) -> None:
        runner = web.AppRunner(listener.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, listener.host, listener.port, ssl_context=_ssl(listener.tls))
        await site.start()
        listener.runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        listener.bound_port = sockets[0].getsockname()[1] if sockets else listener.port

    def port_of(self, name: str) -> int | None:
        return next((lst.bound_port for lst in self.listeners if lst.name == name), None)

    async def reload(self) -> ReloadReport:
        """Re-read the file and apply it; ConfigInvalid leaves everything as it was."""
        assert self.engine is not None
        try:
            config = load_config(self.config_path)
        except ConfigInvalid:
            self.engine.reloads["failed"] += 1
            raise
        from gateway.sip.frontend import restart_keys

        keys = _service_restart_only(self.engine.config, config)
        keys += restart_keys(self.engine.config, config)
        if keys:
            self.engine.reloads["failed"] += 1
            raise ConfigInvalid(restart_problems(config, keys))
        try:
            token = admin_token(config.admin, self.env)
        except ServiceError as exc:
            self.engine.reloads["failed"] += 1
            from gateway.config import ConfigProblem
            raise ConfigInvalid([ConfigProblem(config.path, None, "admin", str(exc))]) from exc
        report = await self.engine.reload(config)
        if self.lookups is not None:
            self.lookups.reconfigure(config)
        if self.sip_redirect is not None:
            self.sip_redirect.reconfigure(config)
        if self.admin is not None:
            self.admin.token = token
            self.admin.metrics_need_token = config.admin.metrics_need_token
        if self.traces is not None:
            self.traces.expire_after = config.traces.expire_after
            self.traces.max_seconds = config.traces.max_seconds
        from gateway.logs import set_level

        set_level(config.logging.level.value)
        return report

    async def _reload_logged(self) -> None:
        try:
            report = await self.reload()
            log.info("reloaded %s: %s", self.config_path, report.summary())
        except ConfigInvalid as exc:
            log.error("reload of %s refused; the running configuration stays:\n%s",
                      self.config_path, exc.report())
        except Exception:
            log.exception("reload of %s failed", self.config_path)

    def request_reload(self) -> None:
        """SIGHUP: reload in the background (one at a time)."""
        if self._reloading is not None and not self._reloading.done():
            log.warning("a reload is already running")
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload_logged())

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self) -> None:
        if self.sip_redirect is not None:
            await self.sip_redirect.close()
            self.sip_redirect = None
        for listener in self.listeners:
            if listener.runner is not None:
                await listener.runner.cleanup()
                listener.runner = None
        if self.batch is not None:
            await self.batch.close()  # closed with its application already, if it started
        if self.traces is not None:
            await self.traces.close()
        if self.engine is not None:
            await self.engine.close()
        if self.store is not None:
            try:
                await self.store.flush()
            finally:
                await self.store.close()
            self.store = None
        if self.cache is not None:
            await self.cache.close()
            self.cache = None
        from gateway.logs import flush

        flush()

    async def run(self) -> None:
        """Start, serve until SIGINT/SIGTERM (reloading on SIGHUP), stop."""
        await self.start()
        # a full collection then walks only what serving creates, not every module and
        # table loaded at start (gen-2 pauses showed as the SIP benchmark's p99)
        gc.collect()
        gc.freeze()
        # the young generation collected every GC_THRESHOLD[0] net container allocations,
        # not CPython's 700: serving keeps thousands of young objects alive (every request
        # in flight), which a collection every ~30 requests walked and promoted again and
        # again (17 us of CPU a request at 3,000/s); what refcounting cannot free (cycles)
        # is still collected, at most that many allocations later (docs/operations.md)
        threshold = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLD)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        try:
            await self._stop.wait()
            log.info("stopping")
        finally:
            for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            gc.set_threshold(*threshold)
            await self.stop()
