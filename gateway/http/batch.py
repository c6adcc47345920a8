"""The batch endpoints of the lookup API (see docs/api.md, "Batch jobs"):

- ``POST /v1/lookups``: ``{"service": "hlr", "numbers": [...], "callback_url": "..."}``
  (or a ``text/plain`` / ``text/csv`` body, one number a line, with ``?service=``
  and ``?callback_url=``) answers **202** with the job and ``Location: /v1/lookups/ID``;
- ``GET /v1/lookups/{id}``: the job's progress and one page of its items
  (``?page=1&per_page=1000``, at most 10,000 a page), as JSON, or as CSV with
  ``Accept: text/csv`` or ``?format=csv`` (without ``page`` the CSV holds every item);
- ``GET /v1/lookups``: the customer's latest jobs.

:func:`setup_batch_routes` adds them to the API application (whose request context, or the
middleware of :mod:`gateway.http.auth`, authenticates them) and, by default, starts and stops the
:class:`~gateway.batch.BatchManager` with the application.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.batch import MAX_NUMBERS, BatchManager, item_document, job_document, pages
from gateway.store import Job, JobItem

from .auth import customer_of
from .problems import ProblemError, ProblemType

__all__ = ["BATCH", "MAX_BODY", "setup_batch_routes"]

BATCH = web.AppKey("hlrgw_batch", BatchManager)
MAX_BODY = 16 * 1024 * 1024  # a job of 100,000 numbers is about 2 MB of JSON
PER_PAGE = 1000
MAX_PER_PAGE = 10_000
CSV_CHUNK = 5000


def setup_batch_routes(app: web.Application, manager: BatchManager, *, prefix: str = "/v1",
                       lifecycle: bool = True, max_body: int = MAX_BODY,
                       wrap: Callable[[Any], Any] | None = None) -> None:
    """Add the batch routes under ``prefix``; with ``lifecycle``, ``manager.start()`` runs
    on the application's startup and ``manager.close()`` on its cleanup. ``wrap``: what
    each handler is registered as (the lookup API's request context, which it runs in
    instead of a middleware)."""
    base = f"{prefix}/lookups"
    manager.base_path = base
    app[BATCH] = manager
    handlers = _Handlers(manager, base, max_body)
    w = wrap or (lambda h: h)
    app.router.add_post(base, w(handlers.submit))
    app.router.add_get(base, w(handlers.list))
    app.router.add_get(base + "/{job_id}", w(handlers.get))
    if lifecycle:
        async def start(_app: web.Application) -> None:
            await manager.start()

        async def stop(_app: web.Application) -> None:
            await manager.close()

        app.on_startup.append(start)
        app.on_cleanup.append(stop)


def _bad(detail: str, **ext: Any) -> ProblemError:
    return ProblemError(400, ProblemType.BAD_REQUEST, detail, **ext)


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise ProblemError(413, ProblemType.PAYLOAD_TOO_LARGE,
                           f"the body is {request.content_length} bytes; at most {limit}")
    chunks, size = [], 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise ProblemError(413, ProblemType.PAYLOAD_TOO_LARGE,
                               f"the body is more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{name} must be an integer, not {raw!r}", field=name) from None
    if not lo <= value <= hi:
        raise _bad(f"{name} must be between {lo} and {hi}", field=name)
    return value


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(value, list):
        out[prefix] = json.dumps(value, separators=(",", ":"))
    else:
        out[prefix] = value


def _csv_row(item: JobItem) -> dict[str, Any]:
    row: dict[str, Any] = {"seq": item.seq, "number": item.number, "state": item.state.value}
    if item.error is not None:
        row["error_type"] = item.error.get("type")
        row["error_detail"] = item.error.get("detail")
    if item.result is not None:
        flat: dict[str, Any] = {}
        _flatten(item.result, "", flat)
        for k, v in flat.items():
            row.setdefault(k, v)
    return row


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


class _Handlers:
    def __init__(self, manager: BatchManager, base: str, max_body: int) -> None:
        self.manager = manager
        self.base = base
        self.max_body = max_body

    async def submit(self, request: web.Request) -> web.Response:
        customer = customer_of(request)
        body = await _read_body(request, self.max_body)
        ctype = request.content_type
        options: dict[str, Any] | None = None
        if ctype in ("text/plain", "text/csv"):
            service = request.query.get("service", "")
            callback_url = request.query.get("callback_url")
            try:
                text = body.decode("utf-8-sig")
            except UnicodeDecodeError:
                raise _bad("the body is not UTF-8") from None
            numbers = [line.split(",", 1)[0].strip() for line in text.splitlines()]
            numbers = [n for n in numbers if n and n.lower() not in ("number", "msisdn")]
        elif ctype in ("application/json", "application/octet-stream", ""):
            try:
                doc = json.loads(body)
            except ValueError as exc:
                raise _bad(f"the body is not JSON: {exc}") from None
            if not isinstance(doc, dict):
                raise _bad("the body must be a JSON object")
            unknown = set(doc) - {"service", "numbers", "callback_url", "options"}
            if unknown:
                raise _bad(f"unknown member(s): {', '.join(sorted(unknown))}",
                           field=sorted(unknown)[0])
            service = doc.get("service")
            numbers = doc.get("numbers")
            callback_url = doc.get("callback_url")
            options = doc.get("options")
            if options is not None and not isinstance(options, dict):
                raise _bad("options must be an object", field="options")
        else:
            raise ProblemError(415, ProblemType.UNSUPPORTED_MEDIA_TYPE,
                               f"send application/json (or text/plain, text/csv), not {ctype}")
        if not isinstance(service, str) or not service:
            raise _bad("service is required: hlr, mnp, ranges or port_history",
                       field="service")
        if not isinstance(numbers, list):
            raise _bad(f"numbers must be a list of at most {MAX_NUMBERS} numbers",
                       field="numbers")
        job = await self.manager.submit(customer, service, numbers,
                                        callback_url=callback_url, options=options)
        location = f"{self.base}/{job.id}"
        return web.json_response(job_document(job, self.base), status=202,
                                 headers={"Location": location})

    async def list(self, request: web.Request) -> web.Response:
        customer = customer_of(request)
        limit = _int_param(request, "limit", 50, 1, 1000)
        jobs = await self.manager.store.list_jobs(customer.id, limit)
        return web.json_response({"jobs": [job_document(j, self.base) for j in jobs]})

    async def get(self, request: web.Request) -> web.StreamResponse:
        customer = customer_of(request)
        job = await self.manager.get(request.match_info["job_id"], customer)
        fmt = request.query.get("format")
        if fmt is None:
            accept = request.headers.get("Accept", "")
            fmt = "csv" if "text/csv" in accept and "application/json" not in accept \
                else "json"
        if fmt not in ("json", "csv"):
            raise _bad(f"format must be json or csv, not {fmt!r}", field="format")
        per_page = _int_param(request, "per_page", PER_PAGE, 1, MAX_PER_PAGE)
        last = pages(job.total, per_page)
        if fmt == "csv" and "page" not in request.query and "per_page" not in request.query:
            return await self._csv(request, job, 0, job.total)
        page = _int_param(request, "page", 1, 1, max(1, last))
        start = (page - 1) * per_page
        if fmt == "csv":
            return await self._csv(request, job, start, per_page)
        items = await self.manager.store.job_items(job.id, start, per_page)
        doc = job_document(job, self.base)
        link = f"{self.base}/{job.id}?per_page={per_page}&page="
        doc["results"] = {"page": page, "per_page": per_page, "pages": last,
                          "items": [item_document(i) for i in items]}
        doc["links"].update({
            "first": link + "1", "last": link + str(last),
            "next": link + str(page + 1) if page < last else None,
            "prev": link + str(page - 1) if page > 1 else None,
            "csv": f"{self.base}/{job.id}?format=csv"})
        return web.json_response(doc)

    async def _csv(self, request: web.Request, job: Job, start: int, count: int
                   ) -> web.StreamResponse:
        store = self.manager.store
        end = min(job.total, start + count)
        # first pass: the columns (results may differ in shape)
        fixed = ["seq", "number", "state", "error_type", "error_detail"]
        extra: dict[str, None] = {}
        for at in range(start, end, CSV_CHUNK):
            for item in await store.job_items(job.id, at, min(CSV_CHUNK, end - at)):
                for k in _csv_row(item):
                    if k not in fixed:
                        extra.setdefault(k, None)
        columns = fixed + sorted(extra)
        resp = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="hlrgw-{job.id}.csv"'})
        await resp.prepare(request)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\r\n")
        writer.writerow(columns)
        for at in range(start, end, CSV_CHUNK):
            for item in await store.job_items(job.id, at, min(CSV_CHUNK, end - at)):
                row = _csv_row(item)
                writer.writerow([_csv_value(row.get(c)) for c in columns])
            await resp.write(buf.getvalue().encode())
            buf.seek(0)
            buf.truncate()
        if buf.tell():  # the header alone, when there is no item
            await resp.write(buf.getvalue().encode())
        await resp.write_eof()
        return resp
