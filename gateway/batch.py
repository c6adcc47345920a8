"""Batch lookups: up to :data:`MAX_NUMBERS` numbers of one service, looked up in the
background, kept in the store, and a signed callback when the job is done.

:meth:`BatchManager.submit` checks the numbers (an invalid one becomes a failed item with the
invalid-number problem; the rest go ahead) and stores the job and every item in one
transaction before answering: an accepted job survives a restart. A runner per job then
looks the pending items up through the ``lookup(service, number, customer) -> dict``
callable it was given:

- **limits**: before each item it waits for the customer's in-flight slot and a token
  (:meth:`gateway.customers.Limiter.acquire`: batches and interactive calls of a customer
  share its limits, the batches taking at most half of them), and for one of the
  manager's ``concurrency`` slots (all jobs together);
- **results** are written in groups (every ``flush_every`` items or ``flush_interval``
  seconds) by :meth:`~gateway.store.Store.complete_items`, each with its audit row in the
  same transaction: a number's result and its billing row are written together, once. The
  lookup callable given here must therefore *not* record the lookup itself;
- **restart**: on :meth:`BatchManager.start` every unfinished job is taken up again from its
  pending items (an item whose result was not written yet is looked up again; none is
  written twice). Jobs are leased to one gateway (``node``) at a time, renewed while it
  runs, so gateways sharing a PostgreSQL store do not run a job twice; a job whose gateway
  died is taken over when its lease runs out;
- **callback**: when done, the job (with its results inline up to ``inline_max`` items) is
  POSTed as JSON to the job's ``callback_url``, signed: ``X-HLRGW-Signature: sha256=HEX``
  is HMAC-SHA256 of the exact body with the customer's callback secret, and
  ``X-HLRGW-Timestamp`` repeats the body's ``delivered_at`` (seconds since the epoch; a
  receiver refuses old ones). A non-2xx answer, a timeout or a refused connection is tried
  again with exponential backoff (``base_delay`` doubling up to ``max_delay``, at most
  ``attempts`` tries), and the attempts are kept in the store, so a restart goes on with
  them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import inspect
import json
import logging
import math
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from gateway import __version__
from gateway.customers import SERVICES, Limiter
from gateway.http.problems import PROBLEM_BASE, ProblemError, ProblemType, check_number
from gateway.store import Customer, ItemResult, Job, JobItem, JobState, Store, StoreError

__all__ = [
    "MAX_NUMBERS", "BatchManager", "CallbackPolicy", "LookupFn", "default_describe",
    "isotime", "job_document", "item_document", "sign",
]

log = logging.getLogger(__name__)

MAX_NUMBERS = 100_000
LookupFn = Callable[[str, str, Customer], Awaitable[dict[str, Any]]]
#: (service, result) -> (outcome, route, network seen) for the audit and the port history
DescribeFn = Callable[[str, dict[str, Any]], tuple[str, str | None, str | None]]


def default_describe(service: str, result: dict[str, Any]) -> tuple[str, str | None,
                                                                       str | None]:
    """The audit fields of a lookup's answer: ``outcome`` (else ``status``, else "ok"),
    ``route``, and the network now serving the number: ``network`` as a string, or the
    ``mccmnc`` (else ``name``) of a ``network`` object."""
    outcome = result.get("outcome") or result.get("status") or "ok"
    route = result.get("route")
    network = result.get("network")
    if isinstance(network, dict):
        network = network.get("mccmnc") or network.get("name")
    return (str(outcome), route if isinstance(route, str) else None,
            network if isinstance(network, str) and network else None)


def sign(secret: str, body: bytes) -> str:
    """The ``X-HLRGW-Signature`` value of a callback body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def isotime(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def job_document(job: Job, base: str = "/v1/lookups") -> dict[str, Any]:
    """A job as the API shows it (without its results)."""
    pending = job.pending
    return {
        "id": job.id, "service": job.service, "state": job.state.value,
        "created_at": isotime(job.created_at), "started_at": isotime(job.started_at),
        "finished_at": isotime(job.finished_at),
        "progress": {"total": job.total, "done": job.done, "failed": job.failed,
                     "pending": pending,
                     "percent": round(100.0 * (job.total - pending) / job.total, 1)
                     if job.total else 100.0},
        "callback": None if job.callback_url is None else {
            "url": job.callback_url, "state": job.callback_state,
            "attempts": job.callback_attempts, "last_error": job.callback_error},
        "links": {"self": f"{base}/{job.id}"},
    }


def item_document(item: JobItem) -> dict[str, Any]:
    doc: dict[str, Any] = {"seq": item.seq, "number": item.number, "state": item.state.value}
    if item.result is not None:
        doc["result"] = item.result
    if item.error is not None:
        doc["error"] = item.error
    return doc


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """How callbacks are delivered (see the module docstring)."""

    attempts: int = 8
    base_delay: float = 5.0  # seconds before the second try; doubles each time
    max_delay: float = 3600.0
    timeout: float = 10.0  # per try
    inline_max: int = 1000  # results sent in the body up to this many items


@dataclass(slots=True)
class _Run:
    job: Job
    customer: Customer
    buffer: list[ItemResult] = field(default_factory=list)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)  # lookups in progress
    flushes: set[asyncio.Task[bool]] = field(default_factory=set)


class BatchManager:
    """Batch jobs of one gateway (see the module docstring)."""

    def __init__(self, store: Store, lookup: LookupFn, limiter: Limiter | None = None, *,
                 node: str = "hlrgw", concurrency: int = 64, chunk: int = 1000,
                 flush_every: int = 200, flush_interval: float = 0.25, lease: float = 60.0,
                 item_timeout: float = 120.0, callback: CallbackPolicy | None = None,
                 describe: DescribeFn = default_describe, base_path: str = "/v1/lookups",
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.lookup = lookup
        self.limiter = limiter or Limiter()
        self.node = node
        self.concurrency = concurrency
        self.chunk = chunk
        self.flush_every = flush_every
        self.flush_interval = flush_interval
        self.lease = lease
        self.item_timeout = item_timeout
        self.callback = callback or CallbackPolicy()
        self.describe = describe
        self.base_path = base_path
        self.clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        try:
            params = inspect.signature(lookup).parameters
            self._takes_options = "options" in params or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):
            self._takes_options = False
        self._runs: dict[str, _Run] = {}
        self._runners: dict[str, asyncio.Task[None]] = {}
        self._scanner: asyncio.Task[None] | None = None
        self._session: Any = None
        self._started = False
        self._closing = False

    # ---- lifecycle

    async def start(self) -> None:
        """Take up every unfinished job (and undelivered callback) this gateway may run,
        and keep looking for jobs whose gateway's lease ran out."""
        self._started = True
        self._closing = False
        await self._take_up()
        self._scanner = asyncio.get_running_loop().create_task(self._scan_loop())

    async def _scan_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease)
            try:
                await self._take_up()
            except StoreError as exc:
                log.warning("batch: cannot look for jobs to take up: %s", exc)

    async def _take_up(self) -> None:
        now = self.clock()
        for job in await self.store.resumable_jobs():
            if job.id in self._runners:
                continue
            if await self.store.claim_job(job.id, self.node, now + self.lease, now):
                log.info("batch: taking up job %s (%d of %d items left)", job.id,
                         job.pending, job.total)
                self._spawn(job)

    async def close(self) -> None:
        """Stop every runner: results already looked up are written, the rest stay pending
        for the next start; the leases are given back."""
        self._closing = True
        if self._scanner is not None:
            self._scanner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scanner
            self._scanner = None
        runners = list(self._runners.values())
        for task in runners:
            task.cancel()
        for task in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _spawn(self, job: Job) -> None:
        task = asyncio.get_running_loop().create_task(self._runner(job))
        self._runners[job.id] = task
        task.add_done_callback(lambda _t, jid=job.id: self._runners.pop(jid, None))

    # ---- submitting and reading jobs

    async def submit(self, customer: Customer, service: str, numbers: Sequence[Any], *,
                     callback_url: str | None = None,
                     options: dict[str, Any] | None = None) -> Job:
        """Check and store a new job; it starts at once. ProblemError (bad-request,
        not-entitled) when it cannot be accepted."""
        if service not in SERVICES:
            raise ProblemError(400, ProblemType.BAD_REQUEST,
                               f"unknown service {service!r}: one of {', '.join(SERVICES)}",
                               field="service")
        if not customer.entitled(service):
            raise ProblemError(403, ProblemType.NOT_ENTITLED,
                               f"customer {customer.name!r} is not entitled to the "
                               f"{service} service", service=service)
        if not isinstance(numbers, list | tuple) or not numbers:
            raise ProblemError(400, ProblemType.BAD_REQUEST,
                               "numbers must be a non-empty list", field="numbers")
        if len(numbers) > MAX_NUMBERS:
            raise ProblemError(400, ProblemType.BAD_REQUEST,
                               f"{len(numbers)} numbers: a job takes at most {MAX_NUMBERS}",
                               field="numbers", max_numbers=MAX_NUMBERS)
        if callback_url is not None:
            check_callback_url(callback_url)
        if len(numbers) > 1000:  # about 30 µs a number: keep the event loop free
            digits, failed = await asyncio.to_thread(_check_numbers, numbers)
        else:
            digits, failed = _check_numbers(numbers)
        now = self.clock()
        job = Job(id=uuid.uuid4().hex, customer_id=customer.id, service=service,
                  options=options or {}, callback_url=callback_url, state=JobState.QUEUED,
                  total=len(digits), failed=len(failed), created_at=now, owner=self.node,
                  lease_until=now + self.lease)
        await self.store.create_job(job, digits, failed)
        if self._started and not self._closing:
            self._spawn(job)
        return job

    async def get(self, job_id: str, customer: Customer) -> Job:
        """The customer's job; 404 not-found otherwise (someone else's job included)."""
        job = await self.store.get_job(job_id, customer.id)
        if job is None:
            raise ProblemError(404, ProblemType.NOT_FOUND, f"no job {job_id!r}")
        return job

    async def wait(self, job_id: str, timeout: float | None = None) -> Job | None:
        """Wait until this gateway's runner of the job ends (done and callback settled, or
        stopped); the job as stored then."""
        task = self._runners.get(job_id)
        if task is not None:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        return await self.store.get_job(job_id)

    def running(self) -> list[str]:
        return list(self._runners)

    # ---- the runner

    async def _runner(self, job: Job) -> None:
        renew = asyncio.get_running_loop().create_task(self._renew(job.id))
        run: _Run | None = None
        try:
            customer = await self.store.get_customer(job.customer_id)
            if customer is None:  # pragma: no cover - a job always has its customer
                log.error("batch: job %s has no customer", job.id)
                return
            now = self.clock()
            if not await self.store.claim_job(job.id, self.node, now + self.lease, now):
                log.info("batch: job %s is held by another gateway", job.id)
                return
            if job.state is not JobState.DONE:
                job = await self.store.recount_job(job.id) or job
                run = self._runs[job.id] = _Run(job, customer)
                await self._look_up_all(run)
                finished = await self.store.finish_job(job.id, self.clock())
                assert finished is not None
                job = finished
                log.info("batch: job %s done: %d answered, %d failed", job.id, job.done,
                         job.failed)
            if job.callback_state == "pending":
                customer = await self.store.get_customer(job.customer_id) or customer
                await self._deliver(job, customer)
        except asyncio.CancelledError:
            if run is not None:
                await self._stop_run(run)
            with contextlib.suppress(Exception):
                await asyncio.shield(self.store.release_job(job.id, self.node))
            raise
        except Exception:
            log.exception("batch: job %s stopped on an error; it is taken up again later",
                          job.id)
            if run is not None:
                await self._stop_run(run)
            with contextlib.suppress(Exception):
                await self.store.release_job(job.id, self.node)
        finally:
            renew.cancel()
            self._runs.pop(job.id, None)

    async def _renew(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                now = self.clock()
                held = await self.store.claim_job(job_id, self.node, now + self.lease, now)
            except StoreError as exc:
                log.warning("batch: cannot renew the lease of job %s: %s", job_id, exc)
                continue
            if not held:
                runner = self._runners.get(job_id)
                if runner is not None:
                    log.warning("batch: job %s was taken over by another gateway", job_id)
                    runner.cancel()
                return

    async def _look_up_all(self, run: _Run) -> None:
        flusher = asyncio.get_running_loop().create_task(self._flush_loop(run))
        try:
            while True:
                after, spawned = -1, 0
                while True:
                    items = await self.store.pending_items(run.job.id, after, self.chunk)
                    if not items:
                        break
                    for seq, number in items:
                        await self._admit(run)
                        customer = run.customer
                        task = asyncio.get_running_loop().create_task(
                            self._one(run, customer, seq, number))
                        run.tasks.add(task)
                        # the slots go back even when the task is cancelled before it runs
                        task.add_done_callback(lambda t, c=customer: self._done(run, t, c))
                    after, spawned = items[-1][0], spawned + len(items)
                    await self._refresh_customer(run)
                while run.tasks:
                    await asyncio.gather(*run.tasks, return_exceptions=True)
                await self._flush_all(run)
                if not spawned:
                    return
        finally:
            flusher.cancel()

    async def _admit(self, run: _Run) -> None:
        await self.limiter.acquire(run.customer)
        try:
            await self._slots.acquire()
        except BaseException:
            self.limiter.release(run.customer, batch=True)
            raise

    def _done(self, run: _Run, task: asyncio.Task[None], customer: Customer) -> None:
        run.tasks.discard(task)
        self._slots.release()
        self.limiter.release(customer, batch=True)

    async def _refresh_customer(self, run: _Run) -> None:
        with contextlib.suppress(StoreError):
            fresh = await self.store.get_customer(run.customer.id)
            if fresh is not None:
                run.customer = fresh

    async def _one(self, run: _Run, customer: Customer, seq: int, number: str) -> None:
        try:
            result = await asyncio.wait_for(self._call(run.job, number, customer),
                                            self.item_timeout)
            if not isinstance(result, dict):
                raise TypeError(f"the lookup returned {type(result).__name__}, not a dict")
            outcome, route, network = self.describe(run.job.service, result)
            item = ItemResult(seq, number, result, None, outcome, route, network,
                              self.clock())
        except ProblemError as exc:
            doc = exc.document()
            item = ItemResult(seq, number, None, doc,
                              str(exc.type).removeprefix(PROBLEM_BASE),
                              exc.ext.get("route"), None, self.clock())
        except TimeoutError:
            doc = ProblemError(504, ProblemType.UPSTREAM_TIMEOUT,
                               f"no answer within {self.item_timeout:g} s").document()
            item = ItemResult(seq, number, None, doc, ProblemType.UPSTREAM_TIMEOUT.value,
                              None, None, self.clock())
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("batch: job %s item %d: lookup raised %s", run.job.id, seq,
                        type(exc).__name__)
            doc = ProblemError(502, ProblemType.UPSTREAM_FAILURE,
                               "the lookup failed").document()
            item = ItemResult(seq, number, None, doc, ProblemType.UPSTREAM_FAILURE.value,
                              None, None, self.clock())
        run.buffer.append(item)
        if len(run.buffer) >= self.flush_every and not run.lock.locked():
            flush = asyncio.get_running_loop().create_task(self._flush(run))
            run.flushes.add(flush)
            flush.add_done_callback(run.flushes.discard)

    def _call(self, job: Job, number: str, customer: Customer) -> Awaitable[dict[str, Any]]:
        if job.options and self._takes_options:
            return self.lookup(job.service, number, customer,  # type: ignore[call-arg]
                               options=job.options)
        return self.lookup(job.service, number, customer)

    async def _flush(self, run: _Run) -> bool:
        """Write the buffered results; False (and they stay buffered) when the store
        refused."""
        async with run.lock:
            batch = run.buffer[:]
            if not batch:
                return True
            del run.buffer[:len(batch)]
            try:
                await self.store.complete_items(run.job, batch)
            except Exception as exc:
                log.warning("batch: job %s: cannot write %d results yet: %s", run.job.id,
                            len(batch), exc)
                run.buffer[:0] = batch
                return False
            return True

    async def _flush_loop(self, run: _Run) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            await self._flush(run)

    async def _flush_all(self, run: _Run) -> None:
        """Write every result: the buffer, and the flushes already under way (until they
        are committed, their items still read as pending)."""
        delay = 0.1
        while True:
            if run.flushes:
                await asyncio.gather(*run.flushes, return_exceptions=True)
            if not await self._flush(run):  # also waits for the periodic flush
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            elif not run.buffer and not run.flushes:
                return

    async def _stop_run(self, run: _Run) -> None:
        """A stop: cancel the lookups in progress, write what is finished."""
        tasks = list(run.tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, *run.flushes, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.shield(self._flush(run))

    # ---- the callback

    async def _deliver(self, job: Job, customer: Customer) -> None:
        import aiohttp

        policy = self.callback
        results: list[dict[str, Any]] | None = None
        if job.total <= policy.inline_max:
            results = [item_document(i) for i in
                       await self.store.job_items(job.id, 0, job.total)]
        attempts = job.callback_attempts
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": f"hlr-gateway/{__version__}"})
        while attempts < policy.attempts:
            if job.callback_next_at is not None and attempts:
                await asyncio.sleep(max(0.0, job.callback_next_at - self.clock()))
            sent_at = int(self.clock())
            doc = {"event": "job.finished", "delivered_at": sent_at,
                   "job": job_document(job, self.base_path),
                   "results": results, "results_included": results is not None}
            body = json.dumps(doc, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json",
                       "X-HLRGW-Signature": sign(customer.callback_secret, body),
                       "X-HLRGW-Timestamp": str(sent_at), "X-HLRGW-Job": job.id,
                       "X-HLRGW-Attempt": str(attempts + 1)}
            error = None
            try:
                async with self._session.post(
                        job.callback_url, data=body, headers=headers, allow_redirects=False,
                        timeout=aiohttp.ClientTimeout(total=policy.timeout)) as resp:
                    await resp.read()
                    if 200 <= resp.status < 300:
                        await self.store.set_callback_state(job.id, "delivered", attempts + 1)
                        log.info("batch: job %s: callback delivered (attempt %d)", job.id,
                                 attempts + 1)
                        return
                    error = f"HTTP {resp.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:300]
            attempts += 1
            delay = min(policy.max_delay, policy.base_delay * 2 ** (attempts - 1))
            delay *= random.uniform(0.9, 1.1)
            if attempts >= policy.attempts:
                await self.store.set_callback_state(job.id, "failed", attempts, None, error)
                log.warning("batch: job %s: callback failed after %d attempts: %s", job.id,
                            attempts, error)
                return
            next_at = self.clock() + delay
            await self.store.set_callback_state(job.id, "pending", attempts, next_at, error)
            job = _with(job, callback_attempts=attempts, callback_next_at=next_at,
                        callback_error=error)
            log.info("batch: job %s: callback attempt %d failed (%s); next in %.1f s",
                     job.id, attempts, error, delay)
        await self.store.set_callback_state(job.id, "failed", attempts, None,
                                            job.callback_error)


def _check_numbers(numbers: Sequence[Any]) -> tuple[list[str], dict[int, dict[str, Any]]]:
    """E.164 digits of each number, and the invalid-number problem of each invalid one (by
    index; its text is kept as given, cut to 64 characters)."""
    digits: list[str] = []
    failed: dict[int, dict[str, Any]] = {}
    for i, raw in enumerate(numbers):
        try:
            digits.append(check_number(raw))
        except ProblemError as exc:
            failed[i] = exc.document()
            digits.append(str(raw)[:64])
    return digits, failed


def _with(job: Job, **changes: Any) -> Job:
    import dataclasses

    return dataclasses.replace(job, **changes)


def check_callback_url(url: Any) -> str:
    """An http(s) URL with a host, else ProblemError bad-request."""
    if not isinstance(url, str) or len(url) > 2048:
        raise ProblemError(400, ProblemType.BAD_REQUEST, "callback_url must be a URL string "
                           "of at most 2048 characters", field="callback_url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProblemError(400, ProblemType.BAD_REQUEST, f"callback_url {url!r} is not an "
                           "http or https URL with a host", field="callback_url")
    return url


def pages(total: int, per_page: int) -> int:
    return max(1, math.ceil(total / per_page))
