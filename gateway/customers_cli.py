"""``hlrgw customers``: manage the customers of the lookup API and their keys, directly in the
gateway's store (the ``[storage] url`` of the configuration file), so it works whether or
not the gateway runs. A running gateway sees changes within its key cache time (5 s).

- ``hlrgw customers add NAME --services hlr,mnp [--rate 50] [--burst N] [--inflight 20]
  [--see-imsi] [--cache-age S]``: a new customer; prints its API key and its callback
  secret, both shown this once;
- ``hlrgw customers list``: customers, their settings and keys (ids and states only);
- ``hlrgw customers revoke NAME|KEY_ID``: revoke one key, or every key of a customer, now;
- ``hlrgw customers rotate NAME [--grace SECONDS] [--callback-secret]``: a new key; the old
  keys keep working for the grace period (default 86400 s; 0 ends them at once). With
  ``--callback-secret``, a new callback secret instead;
- ``hlrgw customers set NAME [--services ...] [--rate R] [--burst N] [--inflight N]
  [--see-imsi|--mask-imsi] [--cache-age S|--default-cache-age] [--disable|--enable]``.

Each takes ``--config FILE`` (default ``$HLRGW_CONFIG``) or ``--store URL``.
Exit status: 0 success, 1 a problem (unknown customer, bad configuration, store unreachable),
2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from gateway.customers import DEFAULT_GRACE, SERVICES, CustomerError, Customers, IssuedKey
from gateway.store import ApiKey, Customer, Store, StoreError, open_store

__all__ = ["add_commands"]

EXIT_OK = 0
EXIT_PROBLEM = 1


class _Problem(Exception):
    pass


def _store_url(args: argparse.Namespace) -> tuple[str, str | None]:
    if getattr(args, "store", None):
        return args.store, None
    path = args.config or os.environ.get("HLRGW_CONFIG")
    if not path:
        raise _Problem("give the gateway's configuration with --config FILE (or "
                       "$HLRGW_CONFIG), or the store with --store URL")
    from gateway.config import ConfigInvalid, load_config

    try:
        config = load_config(path)
    except ConfigInvalid as exc:
        raise _Problem(f"{exc.report()}\n{path} is invalid") from None
    return config.storage.url, os.path.dirname(os.path.abspath(path))


def _run(args: argparse.Namespace, out: TextIO, err: TextIO,
         action: Callable[[Customers], Awaitable[int]]) -> int:
    async def main() -> int:
        url, base = _store_url(args)
        store: Store = await open_store(url, base)
        try:
            return await action(Customers(store))
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except (_Problem, CustomerError, StoreError) as exc:
        print(f"hlrgw customers {args.customers_command}: {exc}", file=err)
        return EXIT_PROBLEM


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _describe(c: Customer) -> str:
    cache = "gateway default" if c.cache_age is None else f"{c.cache_age:g} s"
    return (f"customer {c.name} (id {c.id}){' DISABLED' if not c.active else ''}: services "
            f"{','.join(sorted(c.services))}; rate {c.rate:g}/s (burst {c.burst}); "
            f"{c.inflight} in flight; IMSI {'unmasked' if c.see_imsi else 'masked'}; "
            f"cache age {cache}")


def _print_key(issued: IssuedKey, out: TextIO) -> None:
    print(f"API key (shown once, store it now): {issued.key}", file=out)
    print(f"key id: {issued.key_id}", file=out)


# --------------------------------------------------------------------------- commands


def cmd_add(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async def action(customers: Customers) -> int:
        issued = await customers.add(args.name, args.services, rate=args.rate,
                                     burst=args.burst, inflight=args.inflight,
                                     see_imsi=args.see_imsi, cache_age=args.cache_age)
        c = issued.customer
        if args.json:
            print(json.dumps({**c.as_dict(), "key": issued.key, "key_id": issued.key_id,
                              "callback_secret": c.callback_secret}), file=out)
            return EXIT_OK
        print(_describe(c), file=out)
        _print_key(issued, out)
        print(f"callback secret (signs batch callbacks; shown once): {c.callback_secret}",
              file=out)
        return EXIT_OK

    return _run(args, out, err, action)


def _key_line(k: ApiKey, now: float) -> str:
    state = k.state(now)
    if state == "expiring":
        state += f" at {_when(k.expires_at)}"
    elif state == "revoked":
        state += f" at {_when(k.revoked_at)}"
    return f"  key {k.key_id}  {state}  (created {_when(k.created_at)})"


def cmd_list(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async def action(customers: Customers) -> int:
        rows = await customers.list()
        now = time.time()
        if args.json:
            print(json.dumps([{**c.as_dict(), "keys": [
                {"key_id": k.key_id, "state": k.state(now), "created_at": k.created_at,
                 "expires_at": k.expires_at, "revoked_at": k.revoked_at} for k in keys]}
                for c, keys in rows]), file=out)
            return EXIT_OK
        if not rows:
            print("no customers", file=out)
        for c, keys in rows:
            print(_describe(c), file=out)
            for k in keys:
                print(_key_line(k, now), file=out)
        return EXIT_OK

    return _run(args, out, err, action)


def cmd_revoke(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async def action(customers: Customers) -> int:
        customer, keys = await customers.revoke(args.target)
        if keys:
            print(f"revoked {len(keys)} key(s) of {customer.name}: {', '.join(keys)}",
                  file=out)
        else:
            print(f"{customer.name} had no key left to revoke", file=out)
        return EXIT_OK

    return _run(args, out, err, action)


def cmd_rotate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    async def action(customers: Customers) -> int:
        if args.callback_secret:
            customer, secret = await customers.rotate_callback_secret(args.name)
            print(f"new callback secret of {customer.name} (shown once; the old one no "
                  f"longer signs): {secret}", file=out)
            return EXIT_OK
        issued = await customers.rotate(args.name, grace=args.grace)
        _print_key(issued, out)
        if args.grace:
            print(f"the previous keys of {issued.customer.name} stop working at "
                  f"{_when(issued.old_keys_expire_at)}", file=out)
        else:
            print(f"the previous keys of {issued.customer.name} no longer work", file=out)
        return EXIT_OK

    return _run(args, out, err, action)


def cmd_set(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    changes: dict[str, Any] = {}
    for name in ("services", "rate", "burst", "inflight", "see_imsi"):
        value = getattr(args, name)
        if value is not None:
            changes[name] = value
    if args.cache_age is not None:
        changes["cache_age"] = args.cache_age
    if args.default_cache_age:
        changes["cache_age"] = None
    if args.disable is not None:
        changes["disabled_at"] = time.time() if args.disable else None

    async def action(customers: Customers) -> int:
        if not changes:
            raise _Problem("nothing to change: give at least one option")
        for key, lo in (("rate", 0.0), ("burst", 1), ("inflight", 1)):
            if key in changes and (changes[key] <= 0 or changes[key] < lo):
                raise _Problem(f"--{key} must be {'> 0' if key == 'rate' else '>= 1'}")
        print(_describe(await customers.update(args.name, **changes)), file=out)
        return EXIT_OK

    return _run(args, out, err, action)


# --------------------------------------------------------------------------- parser


def _store_args(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--config", metavar="FILE", default=None,
                   help="the gateway's configuration: its [storage] url is the store "
                   "(default $HLRGW_CONFIG)")
    g.add_argument("--store", metavar="URL", default=None,
                   help="the store itself: sqlite:///PATH or postgresql://...")


def _nonneg(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, not {text}")
    return value


def add_commands(sub: Any) -> None:
    """Add ``customers`` (add, list, revoke, rotate, set) to the ``hlrgw`` subparsers."""
    p = sub.add_parser("customers", help="manage the lookup API's customers and API keys",
                       description="Manage the customers of the lookup API and their keys in "
                       "the gateway's store. See docs/operations.md, 'Customers'.")
    csub = p.add_subparsers(dest="customers_command", metavar="SUBCOMMAND", required=True)
    services = ",".join(SERVICES)

    a = csub.add_parser("add", help="add a customer and print its API key (shown once)",
                        description="Add a customer entitled to SERVICES and print its API "
                        "key and callback secret. Neither is shown again: the store keeps "
                        "a hash of the key.")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--services", required=True, metavar="LIST",
                   help=f"comma-separated services among {services}")
    a.add_argument("--rate", type=float, default=50.0, metavar="R",
                   help="requests per second (token bucket; default 50)")
    a.add_argument("--burst", type=int, default=None, metavar="N",
                   help="requests at once above the pace (default: the rate, rounded up)")
    a.add_argument("--inflight", type=int, default=20, metavar="N",
                   help="requests in progress at once (default 20)")
    a.add_argument("--see-imsi", action="store_true",
                   help="show this customer IMSIs unmasked (default: masked)")
    a.add_argument("--cache-age", type=_nonneg, default=None, metavar="S",
                   help="default age in seconds of a cached answer this customer accepts "
                   "(default: the gateway's [cache] ttl)")
    a.add_argument("--json", action="store_true", help="print JSON")
    _store_args(a)
    a.set_defaults(func=cmd_add)

    s = csub.add_parser("list", help="list customers and their keys (ids and states)")
    s.add_argument("--json", action="store_true", help="print JSON")
    _store_args(s)
    s.set_defaults(func=cmd_list)

    r = csub.add_parser("revoke", help="revoke a key (KEY_ID) or every key of a customer "
                        "(NAME), at once")
    r.add_argument("target", metavar="NAME|KEY_ID")
    _store_args(r)
    r.set_defaults(func=cmd_revoke)

    o = csub.add_parser("rotate", help="issue a new key; the old ones end after a grace "
                        "period", description="Issue a new API key for NAME and print it "
                        "(shown once). The customer's other keys keep working for --grace "
                        "seconds, then stop; --grace 0 ends them at once.")
    o.add_argument("name", metavar="NAME")
    o.add_argument("--grace", type=_nonneg, default=DEFAULT_GRACE, metavar="SECONDS",
                   help=f"how long the old keys keep working (default {DEFAULT_GRACE:g})")
    o.add_argument("--callback-secret", action="store_true",
                   help="rotate the callback signing secret instead of the API key")
    _store_args(o)
    o.set_defaults(func=cmd_rotate)

    t = csub.add_parser("set", help="change a customer's services, limits or state")
    t.add_argument("name", metavar="NAME")
    t.add_argument("--services", default=None, metavar="LIST",
                   help=f"comma-separated services among {services}")
    t.add_argument("--rate", type=float, default=None, metavar="R")
    t.add_argument("--burst", type=int, default=None, metavar="N")
    t.add_argument("--inflight", type=int, default=None, metavar="N")
    imsi = t.add_mutually_exclusive_group()
    imsi.add_argument("--see-imsi", dest="see_imsi", action="store_const", const=True,
                      default=None)
    imsi.add_argument("--mask-imsi", dest="see_imsi", action="store_const", const=False)
    cache = t.add_mutually_exclusive_group()
    cache.add_argument("--cache-age", type=_nonneg, default=None, metavar="S")
    cache.add_argument("--default-cache-age", action="store_true",
                       help="use the gateway's [cache] ttl")
    state = t.add_mutually_exclusive_group()
    state.add_argument("--disable", dest="disable", action="store_const", const=True,
                       default=None, help="refuse its keys (until --enable)")
    state.add_argument("--enable", dest="disable", action="store_const", const=False)
    _store_args(t)
    t.set_defaults(func=cmd_set)
