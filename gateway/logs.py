"""Logging: structlog, JSON lines (or console text), a request id on every line logged while a
request is answered, and no phone number or IMSI in clear.

Two routes into one stream, with the same fields and the same masking:

- the gateway's own structured events (the HTTP API's request lines, ...) through structlog's
  native loggers (:func:`get_logger`): a short processor chain, about 15 µs a line, which
  matters at thousands of requests a second;
- the standard library's loggers (the engine, the SIGTRAN runtime, aiohttp) through a
  handler whose formatter is structlog's :class:`~structlog.stdlib.ProcessorFormatter`.

Every line has ``ts`` (seconds since the epoch), ``level``, ``logger``, ``event``, then the
context bound with :func:`bind_request` (``request_id``: an engine line logged during a
lookup carries the request's id), then its own fields. :func:`scrub` runs on every value: any
free-standing run of 7 or more digits (an MSISDN, an IMSI, a global title) is masked to its
first and last two digits (``44********01``). Numbers the code means to show are masked
before logging (:func:`gateway.numbers.mask_number`); this is the safety net for the rest.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import logging
import re
import sys
import threading
import time
from collections.abc import MutableMapping
from typing import Any, TextIO

import orjson
import structlog

__all__ = ["bind_request", "clear_request", "enabled", "flush", "get_logger", "log_event",
           "scrub", "set_level", "setup_logging"]

_DIGITS = re.compile(r"(?<![0-9A-Za-z_])\+?\d{7,}(?![0-9A-Za-z_])")
# fields that are numbers of ours: times, durations, counts are no phone numbers
_KEEP = frozenset({"ts", "status", "ms", "bytes", "pid"})
_FIRST = ("ts", "level", "logger", "event")
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "warn": logging.WARNING, "error": logging.ERROR, "exception": logging.ERROR,
           "critical": logging.CRITICAL}

#: what bind_request bound in this context (one ContextVar: cheap to read)
_CONTEXT: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "hlrgw_log_context", default=None)


class _Settings:
    level = logging.INFO
    json = True
    stream: TextIO | None = None  # None: sys.stderr at the time of writing


def _mask(m: re.Match[str]) -> str:
    text = m.group(0)
    plus = "+" if text.startswith("+") else ""
    digits = text[len(plus):]
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def scrub(text: str) -> str:
    """``text`` with every free-standing run of 7+ digits masked (see the module
    docstring)."""
    return _DIGITS.sub(_mask, text)


_SCRUBBED: dict[str, str] = {}  # the request lines' recurring texts, scrubbed (see below)
_SCRUBBED_MAX = 4096


def _scrub_text(text: str) -> str:
    """:func:`scrub` of a text the request path logs again and again (a logger name, an
    event, a method, a route, a customer, a masked number): remembered, up to
    :data:`_SCRUBBED_MAX` texts (then forgotten all at once, and learnt again)."""
    done = _SCRUBBED.get(text)
    if done is None:
        done = _DIGITS.sub(_mask, text)
        if len(text) <= 200:
            if len(_SCRUBBED) >= _SCRUBBED_MAX:
                _SCRUBBED.clear()
            _SCRUBBED[text] = done
    return done


def _scrub_value(value: Any) -> Any:
    t = type(value)
    if t is str:
        if value.isalnum() and value.isascii() and not value.isdigit():
            # letters and digits only (a request id): a run of digits inside it is no
            # free-standing number, so there is nothing to mask
            return value
        return _DIGITS.sub(_mask, value)
    if t is int:
        return value if -1_000_000 < value < 1_000_000 else _DIGITS.sub(_mask, str(value))
    if t is float or t is bool or value is None:
        return value
    if isinstance(value, str):
        return _DIGITS.sub(_mask, value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub_value(v) for v in value]
    return _DIGITS.sub(_mask, str(value))


# --------------------------------------------------------------------------- processors


def _level_filter(_logger: Any, method: str, event: MutableMapping[str, Any]
                  ) -> MutableMapping[str, Any]:
    if _LEVELS.get(method, logging.INFO) < _Settings.level:
        raise structlog.DropEvent
    return event


def _add_context(_logger: Any, _name: str, event: MutableMapping[str, Any]
                 ) -> MutableMapping[str, Any]:
    bound = _CONTEXT.get()
    if bound:
        for k, v in bound.items():
            event.setdefault(k, v)
    return event


def _timestamp(_logger: Any, _name: str, event: MutableMapping[str, Any]
               ) -> MutableMapping[str, Any]:
    record = event.get("_record")
    event["ts"] = round(record.created if record is not None else time.time(), 3)
    return event


def _logger_name(_logger: Any, _name: str, event: MutableMapping[str, Any]
                 ) -> MutableMapping[str, Any]:
    record = event.get("_record")
    if record is not None:
        event["logger"] = record.name
    return event


def _finish(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """ts, level, logger, event first (the shape the gateway always logged), then the rest;
    every value scrubbed but the numeric fields of :data:`_KEEP`."""
    out: dict[str, Any] = {}
    for key in _FIRST:
        if key in event:
            value = event[key]
            out[key] = value if key == "ts" else _scrub_value(value)
    for key, value in event.items():
        if key in out or key.startswith("_") or (key == "message"
                                                  and value == event.get("event")):
            continue  # (message: the standard library's copy of the event)
        out[key] = value if key in _KEEP else _scrub_value(value)
    return out


_console = structlog.dev.ConsoleRenderer(colors=False)


def _json_line(event: dict[str, Any]) -> str:
    try:  # text keys only (every line of the request path): no OPT_NON_STR_KEYS to pay for
        return orjson.dumps(event, default=str).decode()
    except TypeError:  # another key (orjson refuses it without the option)
        pass
    try:
        return orjson.dumps(event, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson refuses (an integer beyond 64 bits): the slow way
        return json.dumps(event, separators=(",", ":"), default=str, ensure_ascii=False)


def _render(logger: Any, name: str, event: dict[str, Any]) -> str:
    if _Settings.json:
        return _json_line(event)
    return _console(logger, name, event)


class _Out:
    """Where both routes write: the stream setup_logging chose (read at each flush, so a
    reconfiguration reaches loggers created before it), buffered: a write system call per
    line would cost more than formatting the line. The buffer goes out when it holds
    64 KiB, when its oldest line is 0.1 s old (checked at each line, and by a daemon
    thread while the gateway is quiet), on :func:`flush`, and at exit."""

    MAX_BYTES = 65536
    MAX_AGE = 0.1

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._size = 0
        self._since = 0.0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def write(self, text: str) -> None:
        if _Settings.stream is None:  # never configured: straight to stderr, as it is now
            sys.stderr.write(text)
            return
        with self._lock:
            if not self._lines:
                self._since = time.monotonic()
            self._lines.append(text)
            self._size += len(text)
            if self._size >= self.MAX_BYTES or time.monotonic() - self._since >= self.MAX_AGE:
                self._flush_locked()
        if self._thread is None:
            self._start()

    def flush(self) -> None:
        """Called after each line by the loggers: the buffer decides (see the class)."""

    def flush_now(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._lines:
            return
        text = "".join(self._lines)
        self._lines.clear()
        self._size = 0
        stream = _Settings.stream or sys.stderr
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):  # a closed stream (a test's, at exit): drop it
            pass

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="hlrgw-log-flush",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.MAX_AGE)
            if self._lines:
                self.flush_now()


_OUT = _Out()
atexit.register(_OUT.flush_now)


def flush() -> None:
    """Write out what the log buffer holds (a clean stop calls it)."""
    _OUT.flush_now()


def _configure_structlog() -> None:
    structlog.configure(
        processors=[_level_filter, _add_context, structlog.processors.add_log_level,
                    _timestamp, structlog.processors.format_exc_info, _finish, _render],
        logger_factory=structlog.WriteLoggerFactory(file=_OUT),  # type: ignore[arg-type]
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        context_class=dict,
        cache_logger_on_first_use=True,
    )


_configure_structlog()


def setup_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None
                  ) -> None:
    """Configure both routes (see the module docstring) for ``level`` and ``fmt`` (json or
    console) on ``stream`` (default stderr). Called again (a reload, another service in
    the same process), it replaces the gateway's handler and keeps any other."""
    _OUT.flush_now()  # what was logged before goes to the stream it was meant for
    _Settings.level = _LEVELS.get(level.lower(), logging.INFO)
    _Settings.json = fmt == "json"
    _Settings.stream = stream or sys.stderr
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_add_context, structlog.stdlib.add_log_level, _logger_name,
                           _timestamp, structlog.stdlib.ExtraAdder(),
                           structlog.processors.format_exc_info],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _finish,
                    _render])
    handler = logging.StreamHandler(_OUT)  # type: ignore[arg-type]
    handler.setFormatter(formatter)
    handler._hlrgw = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_hlrgw", False):
            root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(_Settings.level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # requests: our own lines


def set_level(level: str) -> None:
    """Change the level of both routes (a reload)."""
    _Settings.level = _LEVELS.get(level.lower(), logging.INFO)
    logging.getLogger().setLevel(_Settings.level)


def enabled(level: int) -> bool:
    """Whether a line of ``level`` would be written (skip building one that would not)."""
    return level >= _Settings.level


def log_event(name: str, level: str, event: str, fields: dict[str, Any]) -> None:
    """``get_logger(name).<level>(event, **fields)`` for the request path: the same line
    (``ts``, ``level``, ``logger``, ``event``, then ``fields`` in order, then what
    :func:`bind_request` bound; every value scrubbed but :data:`_KEEP`'s) in the JSON
    format without structlog's processor chain, a third of its cost. ``fields`` must not
    use the names of the first four keys or start with ``_``. The console format goes
    through structlog."""
    if _LEVELS.get(level, logging.INFO) < _Settings.level:
        return
    if not _Settings.json:
        getattr(get_logger(name), level)(event, **fields)
        return
    scrubbed = _SCRUBBED.get  # _scrub_text's memory read inline: a call less per text
    line: dict[str, Any] = {"ts": round(time.time(), 3), "level": level,
                            "logger": scrubbed(name) or _scrub_text(name),
                            "event": scrubbed(event) or _scrub_text(event)}
    for key, value in fields.items():
        if key in _KEEP:
            line[key] = value
        elif type(value) is str:
            line[key] = scrubbed(value) or _scrub_text(value)
        else:
            line[key] = _scrub_value(value)
    bound = _CONTEXT.get()
    if bound:
        for key, value in bound.items():
            if key not in line:
                line[key] = value if key in _KEEP else _scrub_value(value)
    _OUT.write(_json_line(line) + "\n")


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry ``logger=name``."""
    return structlog.get_logger().bind(logger=name)


def bind_request(**values: Any) -> contextvars.Token:
    """Bind values (``request_id=...``) to every line logged in this context (an asyncio
    task and the tasks it starts); :func:`clear_request` with the token undoes it."""
    bound = _CONTEXT.get()
    return _CONTEXT.set({**bound, **values} if bound else values)


def clear_request(token: contextvars.Token | None = None) -> None:
    if token is not None:
        _CONTEXT.reset(token)
    else:
        _CONTEXT.set(None)
