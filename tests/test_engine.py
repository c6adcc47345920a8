"""The engine against in-process HLRs over loopback M3UA/TCP: routes and methods, fail-over
when a link is cut, circuit breakers, TPS caps under load, drain, and a reload under a
steady lookup load that loses no lookup."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import ConfigInvalid, load_config
from gateway.engine import Engine, LookupStatus
from gateway.methods import MethodStatus
from gateway.sigtran.map_client import FailureKind, MapFailure, MapResult, MapUserError
from gateway.sigtran.map_responder import NoReply
from protocols.m3ua_asp import AspState
from tests.hlrnet import association, base, hlrs, linkset, route, write

SRI = 'kind = "map_sri_sm"\n  linkset = "{}"'
ATI = 'kind = "map_ati"\n  linkset = "{}"'


@contextlib.asynccontextmanager
async def engine_for(path: Path, **kw) -> AsyncIterator[Engine]:
    engine = Engine(load_config(path), **kw)
    await engine.start(wait_up=5)
    try:
        yield engine
    finally:
        await engine.close()


def two_hlr_config(tmp_path: Path, h, *, route_extra: str = "", ls_extra: str = "",
                   timer_m: float = 2.0, extra_routes: str = "") -> Path:
    (tmp_path / "ranges.csv").write_text("prefix,network,mccmnc\n33,fr-orange,20801\n")
    (tmp_path / "ported.csv").write_text("msisdn,network,mccmnc,routing_number\n"
                                         "33612345678,fr-free,20815,1234\n")
    return write(tmp_path / "gw.toml", base(timer_m=timer_m),
                 association("a1", h["a"]), association("b1", h["b"]),
                 linkset("lsa", ["a1"], ls_extra), linkset("lsb", ["b1"]),
                 route("uk", ["44"], [SRI.format("lsa"), SRI.format("lsb"), ATI.format("lsb")],
                       route_extra),
                 route("fr", ["33"], ['kind = "local"\n  range_table = "fr"\n'
                                      '  mnp_source = "ported"']),
                 route("blocked", ["999"], ['kind = "reject"\n  reason = "premium range"']),
                 route("rest", None, [SRI.format("lsb")]),
                 extra_routes,
                 '\n[[range_tables]]\nname = "fr"\nfile = "ranges.csv"\n'
                 '\n[[mnp_sources]]\nname = "ported"\nkind = "file"\nfile = "ported.csv"\n')


async def test_lookup_outcomes(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h:
        async with engine_for(two_hlr_config(tmp_path, h)) as e:
            ok = await e.lookup("+44 7700 900123")
            assert ok.status is LookupStatus.ANSWERED and ok.route == "uk" and ok.prefix == "44"
            assert isinstance(ok.map, MapResult) and ok.map.route == "uk#0"
            assert [a.status for a in ok.attempts] == [MethodStatus.ANSWERED]
            assert h["a"].seen[-1][1] == "447700900123" and not h["b"].seen
            absent = await e.lookup("447700900120")  # a final answer: no second method
            assert isinstance(absent.map, MapUserError) and len(absent.attempts) == 1
            # system failure is retryable: both SRI-SM methods, then ATI, which answers
            sf = await e.lookup("447700900126")
            assert [a.kind.value for a in sf.attempts] == ["map_sri_sm", "map_sri_sm",
                                                           "map_ati"]
            assert sf.status is LookupStatus.ANSWERED and sf.final.kind.value == "map_ati"
            ati = await e.lookup("447700900123", operation="ati")
            assert [a.kind.value for a in ati.attempts] == ["map_ati"]
            assert ati.map.operation == 71
            local = await e.lookup("33612345678")
            assert local.local.network == "fr-free" and local.local.ported
            assert local.local.range_holder == "fr-orange"
            assert local.local.routing_number == "1234"
            holder = await e.lookup("33700000000")
            assert (holder.local.network, holder.local.ported) == ("fr-orange", False)
            none = await e.lookup("3412345678")
            assert none.route == "rest" and none.status is LookupStatus.ANSWERED
            rejected = await e.lookup("99912345")
            assert rejected.status is LookupStatus.REJECTED
            assert rejected.detail == "premium range"
            bad = await e.lookup("0044")
            assert bad.status is LookupStatus.INVALID_NUMBER and bad.route is None
            no_op = await e.lookup("33612345678", operation="ati")
            assert no_op.status is LookupStatus.NO_ROUTE
            assert "no map_ati method" in no_op.detail
            stats = e.route_stats("uk")
            assert stats.lookups == 4 and stats.by_status == {"answered": 4}
            assert stats.methods[0].by_status == {"answered": 3}  # ok, absent, system failure
            assert [m.attempts for m in stats.methods] == [3, 1, 2]


async def test_fail_over_when_the_link_is_cut(tmp_path: Path) -> None:
    """Link A is cut twice: while idle (the next lookups go to B at once) and under 50
    dialogues in flight (each fails over to B and is answered)."""
    async with hlrs("a", "b") as h:
        async with engine_for(two_hlr_config(tmp_path, h, timer_m=10)) as e:
            h["a"].server.abort()  # every connection reset, no listener: A stays down
            for _ in range(100):
                if not e.linksets["lsa"].is_up:
                    break
                await asyncio.sleep(0.01)
            out = await e.lookup("447700900123")
            assert out.status is LookupStatus.ANSWERED
            assert [(a.status, a.map.kind if isinstance(a.map, MapFailure) else None)
                    for a in out.attempts] == [(MethodStatus.FAILED, FailureKind.LINK_DOWN),
                                               (MethodStatus.ANSWERED, None)]
            assert out.map.route == "uk#1"

    async with hlrs("a", "b") as h:
        hold = asyncio.Event()

        async def held(inv):
            await hold.wait()
            return NoReply()
        h["a"].handler = held
        async with engine_for(two_hlr_config(tmp_path, h, timer_m=10)) as e:
            calls = [asyncio.ensure_future(e.lookup(f"4477009{i:04d}3")) for i in range(50)]
            for _ in range(200):
                if h["a"].begun() == 50:
                    break
                await asyncio.sleep(0.01)
            assert h["a"].begun() == 50
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for assoc in e.find_link("lsa"):
                assoc.reset()  # the transport drops under the dialogues
            results = await asyncio.wait_for(asyncio.gather(*calls), 5)
            assert loop.time() - t0 < 2  # failed over at once, not after timer m (10 s)
            assert all(r.status is LookupStatus.ANSWERED for r in results)
            assert all(r.attempts[0].map.kind is FailureKind.LINK_DOWN for r in results)
            assert h["b"].begun() == 50
            hold.set()


async def test_circuit_breaker_skips_then_retries_after_cooldown(tmp_path: Path) -> None:
    clock = [0.0]
    async with hlrs("a", "b") as h:
        h["a"].handler = lambda inv: NoReply()  # A never answers
        extra = "breaker_failures = 2\nbreaker_cooldown = 30\ntimeout = 5"
        cfg = two_hlr_config(tmp_path, h, route_extra=extra)
        async with engine_for(cfg, clock=lambda: clock[0]) as e:
            e.client.timer_m = 0.2
            for _ in range(2):  # two timeouts on A open its breaker
                out = await e.lookup("447700900123")
                assert out.attempts[0].map.kind is FailureKind.TIMEOUT
                assert out.status is LookupStatus.ANSWERED
            begun = h["a"].begun()
            assert begun == 2
            skipped = await e.lookup("447700900123")
            assert skipped.attempts[0].status is MethodStatus.SKIPPED
            assert "circuit breaker open for 30.0 s more" in skipped.attempts[0].detail
            assert skipped.attempts[1].status is MethodStatus.ANSWERED
            assert h["a"].begun() == begun  # A was not even asked
            assert e.routes()[0]["methods"][0]["breaker"] == "open"
            clock[0] = 29.9
            assert (await e.lookup("447700900123")).attempts[0].status is MethodStatus.SKIPPED
            clock[0] = 30.0  # cool-down over: one trial goes to A, and A answers now
            h["a"].handler = None
            trial = await e.lookup("447700900123")
            assert trial.attempts[0].status is MethodStatus.ANSWERED
            assert e.routes()[0]["methods"][0]["breaker"] == "closed"
            assert h["a"].begun() == begun + 1


async def test_route_tps_cap_holds_under_load(tmp_path: Path) -> None:
    """300 lookups at once on a route capped at 200/s (burst 10): the gateway never sends
    more than 10 + 200 * T Begins in any window of T seconds (timed where they leave, on the
    association), and none is lost."""
    async with hlrs("a", "b") as h:
        extra = "tps = 200\nburst = 10\nqueue_wait = 5\ntimeout = 10"
        async with engine_for(two_hlr_config(tmp_path, h, route_extra=extra)) as e:
            loop = asyncio.get_running_loop()
            sent: list[float] = []
            (a1,) = e.find_link("a1")
            a1.tap = lambda assoc, outgoing, pd: outgoing and sent.append(loop.time())
            t0 = loop.time()
            results = await asyncio.gather(*(e.lookup(f"4477009{i:04d}3") for i in range(300)))
            elapsed = loop.time() - t0
            assert all(r.status is LookupStatus.ANSWERED for r in results)
            assert len(sent) == 300 and len(h["a"].seen) == 300
            assert elapsed >= (300 - 10) / 200 - 0.01
            for window in (0.05, 0.1, 0.5, 1.0):
                for i, t in enumerate(sent):
                    n = sum(1 for u in sent[i:] if u < t + window)
                    assert n <= 10 + 200 * window + 1, (window, n)
            assert e.route_bucket("uk").granted == 300


async def test_route_tps_cap_refuses_when_no_slot_in_time(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h:
        extra = "tps = 5\nburst = 3\nqueue_wait = 0"
        async with engine_for(two_hlr_config(tmp_path, h, route_extra=extra)) as e:
            results = await asyncio.gather(*(e.lookup(f"4477009{i:04d}3") for i in range(20)))
            statuses = [r.status for r in results]
            assert statuses.count(LookupStatus.ANSWERED) == 3
            assert statuses.count(LookupStatus.THROTTLED) == 17
            assert e.route_stats("uk").by_status["throttled"] == 17


async def test_linkset_tps_cap_sends_the_overflow_to_the_next_method(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h:
        ls_extra = "tps = 5\nburst = 4\nqueue_wait = 0"
        async with engine_for(two_hlr_config(tmp_path, h, ls_extra=ls_extra)) as e:
            results = await asyncio.gather(*(e.lookup(f"4477009{i:04d}3") for i in range(30)))
            assert all(r.status is LookupStatus.ANSWERED for r in results)
            via_a = [r for r in results if len(r.attempts) == 1]
            via_b = [r for r in results if len(r.attempts) == 2]
            assert len(via_a) == len(h["a"].seen) == 4
            assert len(via_b) == 26
            assert all(r.attempts[0].status is MethodStatus.THROTTLED for r in via_b)
            assert "TPS cap 5/s reached" in via_b[0].attempts[0].detail
            assert e.linkset_bucket("lsa").refused == 26


async def test_drain_and_restore(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h:
        async with engine_for(two_hlr_config(tmp_path, h)) as e:
            assert await e.drain("a1") == ["a1"]
            out = await e.lookup("447700900123")
            assert out.attempts[0].map.kind is FailureKind.LINK_DOWN  # nothing new on a1
            assert out.status is LookupStatus.ANSWERED
            status = {a.name: a for a in e.associations()}
            assert status["a1"].draining and status["a1"].asp_state == "ACTIVE"
            await e.restore("lsa")
            assert len((await e.lookup("447700900123")).attempts) == 1
            await e.drain("lsa", close=True)
            assert e.find_link("a1")[0].state is AspState.DOWN
            await e.restore("a1")
            assert await e.linksets["lsa"].wait_up(timeout=5)
            assert len((await e.lookup("447700900123")).attempts) == 1
            with pytest.raises(KeyError):
                await e.drain("nothing")


async def test_reload_under_steady_load_loses_no_lookup(tmp_path: Path) -> None:
    """2,000 lookups, 40 at a time, across a reload that removes one of the two
    associations of the link set and adds a route: every lookup is answered, the removed
    association drains (its dialogues finish) and closes, the new route serves at once."""
    async with hlrs("a", "b", "c") as h:
        for x in h.values():
            x.delay = 0.002  # dialogues stay open a little while
        def config(extra_route: str, members: list[str]) -> Path:
            return write(tmp_path / "gw.toml", base(timer_m=5),
                         association("a1", h["a"]), association("b1", h["b"]),
                         *(association("c1", h["c"]) for _ in [1] if "c1" in members),
                         linkset("ls", members),
                         route("uk", ["44"], [SRI.format("ls")]),
                         extra_route,
                         route("rest", None, [SRI.format("ls")]))
        first = config("", ["a1", "c1"])
        async with engine_for(first) as e:
            sem = asyncio.Semaphore(40)
            done: list = []

            async def one(i: int):
                async with sem:
                    r = await e.lookup(f"44770{i:07d}3")
                    done.append(r)
                    return r

            tasks = [asyncio.ensure_future(one(i)) for i in range(2000)]
            while len(done) < 600:
                await asyncio.sleep(0.005)
            new = load_config(config(route("uk-mobile", ["4477"], [SRI.format("ls")]),
                                     ["a1"]))
            (c1,) = e.find_link("c1")
            for _ in range(400):  # reload at a moment when c1 carries dialogues
                if e.client.dialogues_on(c1):
                    break
                await asyncio.sleep(0.001)
            in_flight_c = e.client.dialogues_on(c1)
            loop = asyncio.get_running_loop()
            sent_on_c1: list[float] = []
            c1.tap = lambda assoc, outgoing, pd: outgoing and sent_on_c1.append(loop.time())
            report = await e.reload(new)
            swapped_at = loop.time()
            assert report.removed == ("c1",) and report.routes_added == ("uk-mobile",)
            results = await asyncio.gather(*tasks)
            assert len(results) == 2000
            bad = [r for r in results if not isinstance(r.map, MapResult)]
            assert bad == [], bad[:3]
            assert in_flight_c > 0  # the reload really happened under load on c1
            routes = {r.route for r in results}
            assert routes == {"uk", "uk-mobile"}
            assert not [t for t in sent_on_c1 if t >= swapped_at]  # nothing new on c1
            assert h["c"].responder.stats.answered + h["c"].responder.stats.errors == \
                len(h["c"].seen)  # c1's dialogues all finished
            for _ in range(200):
                if not e.find_link("c1") and not any(a.name == "c1" for a in e.associations()):
                    break
                await asyncio.sleep(0.01)
            assert not any(a.name == "c1" for a in e.associations())
            assert [m.name for m in e.linksets["ls"].members] == ["a1"]
            assert e.generation == 2


async def test_reload_refuses_restart_only_settings(tmp_path: Path) -> None:
    async with hlrs("a", "b") as h:
        path = two_hlr_config(tmp_path, h)
        async with engine_for(path) as e:
            text = path.read_text().replace('global_title = "447700900000"',
                                            'global_title = "447700900000"\nssn = 9')
            path.write_text(text)
            with pytest.raises(ConfigInvalid) as info:
                await e.reload(load_config(path))
            (p,) = info.value.problems
            assert p.key_path == "sccp.ssn" and "restart the gateway" in p.message
            assert p.line == text.splitlines().index("ssn = 9") + 1
            assert e.generation == 1 and e.config.sccp.ssn == 8
            assert e.reloads == {"ok": 0, "failed": 1}
