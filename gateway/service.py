"""The running gateway: the configuration file, the :class:`~gateway.engine.Engine`, the trace
manager and the listeners (today the admin API; the HTTP lookup API joins it as another
listener through :meth:`Service.add_listener`).

:meth:`Service.run` loads and checks the file (an invalid one raises
:class:`~gateway.config.ConfigInvalid` and nothing starts), starts everything, reloads on
SIGHUP and stops cleanly on SIGINT or SIGTERM. :meth:`Service.reload` re-reads the same file:
a bad file, or one that changes a setting only a restart can change, is refused and the
running configuration stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from gateway.admin import AdminApi
from gateway.config import Config, ConfigInvalid, load_config
from gateway.config.schema import AdminSection, TlsSection
from gateway.engine import Engine, ReloadReport, restart_problems
from gateway.trace import TraceManager

__all__ = ["Listener", "Service", "ServiceError", "admin_token", "setup_logging"]

log = logging.getLogger(__name__)


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


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": record.created, "level": record.levelname.lower(), "logger": record.name,
               "event": record.getMessage()}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out)


def setup_logging(config: Config, stream=None) -> None:
    """Root logging per ``[logging]``: level, and JSON lines or console text."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if config.logging.format.value == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: "
                                               "%(message)s"))
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_hlrgw", False):
            root.removeHandler(h)
    handler._hlrgw = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(config.logging.level.value.upper())


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
                 env: Mapping[str, str] | None = None, log_stream=None) -> None:
        self.config_path = os.fspath(config_path)
        self.env = env if env is not None else os.environ
        self.log_stream = log_stream
        self.engine: Engine | None = None
        self.traces: TraceManager | None = None
        self.admin: AdminApi | None = None
        self.listeners: list[Listener] = []
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
        try:
            for listener in self.listeners:
                await self._bind(listener)
        except OSError as exc:
            await self.stop()
            raise ServiceError(f"cannot listen: {exc}") from exc
        log.info("gateway %s up: %d association(s), %d route(s); admin API on %s:%s",
                 config.node.name, len(config.associations), len(config.routes),
                 config.admin.listen, self.listeners[0].bound_port)

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
        keys = _service_restart_only(self.engine.config, config)
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
        if self.admin is not None:
            self.admin.token = token
            self.admin.metrics_need_token = config.admin.metrics_need_token
        if self.traces is not None:
            self.traces.expire_after = config.traces.expire_after
            self.traces.max_seconds = config.traces.max_seconds
        logging.getLogger().setLevel(config.logging.level.value.upper())
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
        for listener in self.listeners:
            if listener.runner is not None:
                await listener.runner.cleanup()
                listener.runner = None
        if self.traces is not None:
            await self.traces.close()
        if self.engine is not None:
            await self.engine.close()

    async def run(self) -> None:
        """Start, serve until SIGINT/SIGTERM (reloading on SIGHUP), stop."""
        await self.start()
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
            await self.stop()
