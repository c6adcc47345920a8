"""Checks across sections, after each section was converted (:mod:`.convert`): duplicate
names, references between sections (route -> link set, link set -> association, method -> SIP
target, local method -> range table and MNP source), prefixes that duplicate or hide one
another, the default route, what each method kind needs, files named by the configuration
(range tables, MNP data, TLS), listeners, URLs.

Every problem goes to the :class:`~.loader.Document`; :func:`check` returns the
:class:`~.schema.Config` only when there are none.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.localdata import read_mnp_csv, read_range_csv
from gateway.routing import hidden_prefixes

from .convert import build, build_section, check_digits, suggest
from .loader import ARRAY_SECTIONS, Document
from .schema import (
    MAP_METHODS,
    AdminSection,
    AssociationSection,
    CacheSection,
    Config,
    HttpSection,
    LinkSetSection,
    LoggingSection,
    MapSection,
    MethodKind,
    MethodSection,
    MnpKind,
    MnpSourceSection,
    NodeSection,
    RangeTableSection,
    RouteSection,
    RoutingNumberSection,
    SccpSection,
    SipRedirectSection,
    SipSection,
    SipTargetSection,
    SipTransport,
    StorageSection,
    TraceSection,
)

__all__ = ["check", "SIP_NOT_AVAILABLE", "SIP_TLS_NOT_AVAILABLE"]

SIP_NOT_AVAILABLE = ("sip MNP sources are not in this version: ask the SIP NP targets from a "
                     "route method instead ([[routes.methods]] kind = \"sip\", "
                     "targets = [...])")
SIP_TLS_NOT_AVAILABLE = ("the SIP NP client speaks udp and tcp; SIP over TLS is not in this "
                         "version")

_SECTIONS: dict[str, type] = {
    "node": NodeSection, "sccp": SccpSection, "map": MapSection, "http": HttpSection,
    "sip": SipSection, "admin": AdminSection, "storage": StorageSection,
    "cache": CacheSection, "logging": LoggingSection, "traces": TraceSection,
}
_ARRAYS: dict[str, type] = {
    "associations": AssociationSection, "linksets": LinkSetSection, "routes": RouteSection,
    "sip_targets": SipTargetSection, "mnp_sources": MnpSourceSection,
    "range_tables": RangeTableSection, "routing_numbers": RoutingNumberSection,
}
_REQUIRED = ("sccp", "map", "routes")
_HOST = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                   r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
_SIP_URI = re.compile(r"sips?:([^@;?\s]+@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?"
                      r"(;[^\s]*)?")

# keys each method kind takes, besides "kind"
_METHOD_KEYS: dict[MethodKind, frozenset[str]] = {
    MethodKind.MAP_SRI_SM: frozenset({"linkset", "called_gt", "timeout", "version"}),
    MethodKind.MAP_ATI: frozenset({"linkset", "called_gt", "timeout", "version"}),
    MethodKind.SIP: frozenset({"targets", "timeout"}),
    MethodKind.LOCAL: frozenset({"range_table", "mnp_source"}),
    MethodKind.REJECT: frozenset({"reason"}),
}


def check(doc: Document) -> Config | None:
    """Convert and check the whole document; the :class:`Config` when nothing is wrong."""
    data = doc.data
    if ("networks" in data or "simulator" in data) and "sccp" not in data:
        doc.problem((), "this is a simulator network file (hlrgw simulate --network FILE), "
                    "not a gateway configuration")
        return None
    known = [*_SECTIONS, *_ARRAYS, "sip_redirect", "include"]
    for key in data:
        if key not in known:
            doc.problem((key,), f"unknown section or key '{key}'{suggest(key, known)}")
    sections: dict[str, Any] = {}
    for key, cls in _SECTIONS.items():
        if key in _REQUIRED and key not in data:
            doc.problem((key,), f"missing required section [{key}]")
            continue
        sections[key] = build_section(cls, data.get(key), (key,), doc)
    # off unless written: None, which Config keeps as "not listening"
    sections["sip_redirect"] = (build(SipRedirectSection, data["sip_redirect"],
                                      ("sip_redirect",), doc)
                                if "sip_redirect" in data else None)
    arrays: dict[str, list[tuple[int, Any]]] = {}
    for key, cls in _ARRAYS.items():
        raw = data.get(key, [])
        if key in _REQUIRED and not raw:
            doc.problem((key,), f"missing required section [[{key}]]: at least one is needed")
        built = []
        for i, item in enumerate(raw if isinstance(raw, list) else []):
            value = build(cls, item, (key, i), doc)
            if value is not None:
                built.append((i, value))
        arrays[key] = built

    names = {key: _names(doc, key) for key in ARRAY_SECTIONS}
    _check_associations(doc, arrays["associations"])
    _check_linksets(doc, arrays["linksets"], arrays["associations"], names)
    _check_sip_targets(doc, arrays["sip_targets"])
    _check_mnp_sources(doc, arrays["mnp_sources"])
    _check_range_tables(doc, arrays["range_tables"])
    _check_routing_numbers(doc, arrays["routing_numbers"])
    _check_sip_redirect(doc, sections.get("sip_redirect"))
    _check_routes(doc, arrays["routes"], names)
    _check_identity(doc, sections)
    _check_listeners(doc, sections)
    if doc.problems:
        return None
    kwargs = {key: value for key, value in sections.items() if value is not None}
    kwargs.update({key: tuple(v for _, v in items) for key, items in arrays.items()})
    kwargs["include"] = tuple(s.display for s in doc.sources[1:])
    kwargs["path"] = doc.main
    return Config(**kwargs)


# --------------------------------------------------------------------------- names


def _names(doc: Document, key: str) -> dict[str, int]:
    """Declared ``name`` -> index, from the raw tables (so a table with another problem still
    declares its name); duplicates are reported here."""
    out: dict[str, int] = {}
    raw = doc.data.get(key, [])
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        if not name:
            doc.problem((key, i, "name"), "must not be empty")
        elif name in out:
            doc.problem((key, i, "name"), f"duplicate name '{name}': also "
                        f"{key}[{out[name]}] at {doc.cite((key, out[name]))}")
        else:
            out[name] = i
    return out


def _ref(doc: Document, path: tuple[Any, ...], what: str, name: str,
         declared: dict[str, int]) -> bool:
    if name in declared:
        return True
    doc.problem(path, f"unknown {what} '{name}'{suggest(name, declared)}")
    return False


# --------------------------------------------------------------------------- sections


def _address_problem(text: str, *, hostname_ok: bool) -> str | None:
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    if hostname_ok and _HOST.fullmatch(text) and not text.replace(".", "").isdigit():
        return None
    return f"'{text}' is not an IP address" + (" or host name" if hostname_ok else "")


def _check_associations(doc: Document, items: list[tuple[int, AssociationSection]]) -> None:
    for i, a in items:
        base = ("associations", i)
        for k, addr in enumerate(a.remote_addresses):
            why = _address_problem(addr, hostname_ok=True)
            if why:
                doc.problem((*base, "remote_addresses", k), why)
        if len(a.remote_addresses) > 1:
            doc.problem((*base, "remote_addresses"),
                        "more than one remote address needs SCTP multi-homing, which this "
                        "version's transport does not do; list one address")
        if a.local_address is not None:
            why = _address_problem(a.local_address, hostname_ok=False)
            if why:
                doc.problem((*base, "local_address"), why)
        if a.local_port and a.local_address is None:
            doc.problem((*base, "local_port"), "a local port needs local_address too")


def _check_linksets(doc: Document, items: list[tuple[int, LinkSetSection]],
                    associations: list[tuple[int, AssociationSection]],
                    names: dict[str, dict[str, int]]) -> None:
    by_name = {a.name: a for _, a in associations}
    owner: dict[str, int] = {}
    for i, ls in items:
        base = ("linksets", i)
        seen: set[str] = set()
        members = []
        for k, name in enumerate(ls.associations):
            path = (*base, "associations", k)
            if name in seen:
                doc.problem(path, f"association '{name}' is listed twice")
                continue
            seen.add(name)
            if not _ref(doc, path, "association", name, names["associations"]):
                continue
            if name in owner:
                j = owner[name]
                doc.problem(path, f"association '{name}' is already in linksets[{j}] at "
                            f"{doc.cite(('linksets', j))}; an association serves one link set")
            else:
                owner[name] = i
            if name in by_name:
                members.append(by_name[name])
        labels = {(a.opc, a.dpc, a.ni) for a in members}
        if len(labels) > 1:
            desc = ", ".join(f"{a.name}: opc {a.opc} dpc {a.dpc} ni {a.ni}" for a in members)
            doc.problem((*base, "associations"), "the associations of a link set must share "
                        f"OPC, DPC and NI (one MTP routing label per destination): {desc}")


def _check_sip_targets(doc: Document, items: list[tuple[int, SipTargetSection]]) -> None:
    for i, t in items:
        if not _SIP_URI.fullmatch(t.uri):
            doc.problem(("sip_targets", i, "uri"),
                        f"'{t.uri}' is not a SIP URI (sip:host[:port] or sips:...)")
        else:
            port = re.search(r":(\d{1,5})(;|$)", t.uri.split("@")[-1])
            if port and not 1 <= int(port.group(1)) <= 65535:
                doc.problem(("sip_targets", i, "uri"), f"port {port.group(1)} is out of "
                            "range 1..65535")
            elif t.uri.startswith("sips:"):
                doc.problem(("sip_targets", i, "uri"), SIP_TLS_NOT_AVAILABLE)
        if t.transport is SipTransport.TLS:
            doc.problem(("sip_targets", i, "transport"), SIP_TLS_NOT_AVAILABLE)
        raw = doc.data["sip_targets"][i]
        if t.burst is not None and isinstance(raw, dict) and "tps" not in raw:
            doc.problem(("sip_targets", i, "burst"), "burst applies to a TPS cap: set tps too")


def _check_routing_numbers(doc: Document, items: list[tuple[int, RoutingNumberSection]]
                           ) -> None:
    seen: dict[str, int] = {}
    for i, r in items:
        base = ("routing_numbers", i)
        if r.routing_number in seen:
            j = seen[r.routing_number]
            doc.problem((*base, "routing_number"), f"routing number {r.routing_number} is "
                        f"already routing_numbers[{j}] at {doc.cite(('routing_numbers', j))}")
        seen.setdefault(r.routing_number, i)
        if not r.network.strip():
            doc.problem((*base, "network"), "must not be empty")
        if r.mccmnc is not None and not re.fullmatch(r"[0-9]{5,6}", r.mccmnc):
            doc.problem((*base, "mccmnc"), f"'{r.mccmnc}' is not an MCC+MNC (5 or 6 digits)")


def _check_sip_redirect(doc: Document, sec: SipRedirectSection | None) -> None:
    """The redirect front end: one listen address, udp and/or tcp, a Contact host, and
    clients whose networks are CIDRs (host bits clear) each listed once, under a valid
    customer name."""
    if sec is None:
        return
    from gateway.customers import _NAME as CUSTOMER_NAME  # the customers' own naming rule

    base = ("sip_redirect",)  # listen and port: with the other listeners
    seen_t: set[SipTransport] = set()
    for k, t in enumerate(sec.transports):
        if t in seen_t:
            doc.problem((*base, "transports", k), f"transport '{t.value}' is listed twice")
        seen_t.add(t)
        if t is SipTransport.TLS:
            doc.problem((*base, "transports", k), "the SIP redirect front end listens on udp "
                        "and tcp; SIP over TLS is not in this version")
    if sec.contact_host is not None:
        why = _address_problem(sec.contact_host.strip("[]"), hostname_ok=True)
        if why:
            doc.problem((*base, "contact_host"), why)
    raw = doc.data.get("sip_redirect")
    if not sec.clients and not (isinstance(raw, dict) and raw.get("clients")):
        doc.problem(base, "no [[sip_redirect.clients]]: every source would be refused (403); "
                    "list the networks that may query, each with its customer")
    where: dict[Any, tuple[int, int]] = {}
    for i, c in enumerate(sec.clients):
        cbase = (*base, "clients", i)
        if not CUSTOMER_NAME.fullmatch(c.customer):
            doc.problem((*cbase, "customer"), f"'{c.customer}' is not a customer name (letters, "
                        "digits, '.', '_', '-'; at most 64; as hlrgw customers add takes)")
        for k, text in enumerate(c.networks):
            path = (*cbase, "networks", k)
            try:
                net = ipaddress.ip_network(text)
            except ValueError:
                try:
                    loose = ipaddress.ip_network(text, strict=False)
                except ValueError:
                    doc.problem(path, f"'{text}' is not an IP address or network (CIDR such "
                                "as 192.0.2.0/24)")
                else:
                    doc.problem(path, f"'{text}' has host bits set: the network is {loose}")
                continue
            if net in where:
                j, kk = where[net]
                doc.problem(path, f"{net} is already listed at "
                            f"{doc.cite((*base, 'clients', j, 'networks', kk))}: a source "
                            "network belongs to one customer")
                continue
            where[net] = (i, k)


def _not_for(doc: Document, base: tuple[Any, ...], raw: Any, allowed: frozenset[str],
             what: str) -> None:
    if not isinstance(raw, dict):
        return
    for key in raw:
        if key not in allowed and key != "kind":
            doc.problem((*base, key), f"'{key}' does not apply to {what}")


def _check_mnp_sources(doc: Document, items: list[tuple[int, MnpSourceSection]]) -> None:
    raw_all = doc.data.get("mnp_sources", [])
    for i, m in items:
        base = ("mnp_sources", i)
        raw = raw_all[i]
        if m.kind is MnpKind.FILE:
            _not_for(doc, base, raw, frozenset({"name", "file"}), "a file MNP source")
            if m.file is None:
                doc.problem((*base, "file"), "missing required key 'file' (kind file)")
            else:
                _data_file(doc, (*base, "file"), m.file, read_mnp_csv)
        else:  # kind sip: recognised only to say what to use instead
            doc.problem((*base, "kind"), SIP_NOT_AVAILABLE)


def _check_range_tables(doc: Document, items: list[tuple[int, RangeTableSection]]) -> None:
    for i, t in items:
        base = ("range_tables", i)
        if t.file is None and not t.ranges:
            doc.problem(base, "a range table needs a file or ranges")
        if t.file is not None:
            _data_file(doc, (*base, "file"), t.file, read_range_csv)
        seen: dict[str, int] = {}
        for k, r in enumerate(t.ranges):
            if r.prefix in seen:
                doc.problem((*base, "ranges", k, "prefix"),
                            f"prefix {r.prefix} is already ranges[{seen[r.prefix]}]")
            seen.setdefault(r.prefix, k)
            if r.mccmnc is not None and not re.fullmatch(r"[0-9]{5,6}", r.mccmnc):
                doc.problem((*base, "ranges", k, "mccmnc"),
                            f"'{r.mccmnc}' is not an MCC+MNC (5 or 6 digits)")


def _data_file(doc: Document, path: tuple[Any, ...], file: str,
               reader: Callable[[str], tuple[list[Any], list[Any]]]) -> None:
    if not Path(file).is_file():
        doc.problem(path, f"file not found: {file}")
        return
    _, problems = reader(file)
    doc.problems.extend(problems)


def _check_routes(doc: Document, items: list[tuple[int, RouteSection]],
                  names: dict[str, dict[str, int]]) -> None:
    raw_routes = doc.data.get("routes", [])
    claims: dict[str, tuple[int, int]] = {}  # prefix -> (route index, prefix index)
    defaults: list[int] = []
    for i, r in items:
        base = ("routes", i)
        if r.default:
            defaults.append(i)
        if not r.prefixes and not r.default:
            doc.problem((*base, "prefixes"), "a route with no prefixes that is not the "
                        "default can never match")
        for k, p in enumerate(r.prefixes):
            if p in claims:
                j, kk = claims[p]
                where = doc.cite(("routes", j, "prefixes", kk))
                if j == i:
                    doc.problem((*base, "prefixes", k), f"prefix {p} is listed twice")
                else:
                    doc.problem((*base, "prefixes", k), f"prefix {p} is also claimed by route "
                                f"'{_route_name(raw_routes, j)}' ({where}): only the first "
                                "can ever match")
            else:
                claims[p] = (i, k)
        raw_methods = raw_routes[i].get("methods", []) if isinstance(raw_routes[i], dict) else []
        for k, m in enumerate(r.methods):
            raw = raw_methods[k] if k < len(raw_methods) else {}
            _check_method(doc, (*base, "methods", k), m, raw, names)
            if m.kind is MethodKind.REJECT and k < len(r.methods) - 1:
                doc.problem((*base, "methods", k + 1), "comes after a reject method, so it "
                            "can never run")
    for p, hiders in hidden_prefixes(claims).items():
        i, k = claims[p]
        shown = ", ".join(f"{q} ({_route_name(raw_routes, claims[q][0])})"
                          for q in sorted(hiders)[:12])
        more = f" and {len(hiders) - 12} more" if len(hiders) > 12 else ""
        doc.problem(("routes", i, "prefixes", k), f"prefix {p} can never match: every digit "
                    f"that can follow it starts a longer prefix: {shown}{more}")
    if len(defaults) > 1:
        for i in defaults[1:]:
            doc.problem(("routes", i, "default"), f"only one route may be the default; "
                        f"route '{_route_name(raw_routes, defaults[0])}' "
                        f"({doc.cite(('routes', defaults[0]))}) already is")
    if not defaults and items:
        doc.problem(("routes",), "no default route: numbers that match no prefix would have "
                    "no route; set default = true on one route (its method may be a reject)")


def _route_name(raw_routes: list[Any], i: int) -> str:
    item = raw_routes[i] if i < len(raw_routes) else None
    return str(item.get("name", f"routes[{i}]")) if isinstance(item, dict) else f"routes[{i}]"


def _check_method(doc: Document, base: tuple[Any, ...], m: MethodSection, raw: Any,
                  names: dict[str, dict[str, int]]) -> None:
    _not_for(doc, base, raw, _METHOD_KEYS[m.kind], f"a {m.kind.value} method")
    if m.kind in MAP_METHODS:
        if m.linkset is None:
            doc.problem((*base, "linkset"), f"a {m.kind.value} method needs a linkset")
        else:
            _ref(doc, (*base, "linkset"), "link set", m.linkset, names["linksets"])
        if m.called_gt != "msisdn":
            why = check_digits(m.called_gt, "gt")
            if why:
                doc.problem((*base, "called_gt"), why.replace("is not a global title",
                            "is neither 'msisdn' nor a global title"))
        if m.kind is MethodKind.MAP_ATI and m.version not in (None, 3):
            doc.problem((*base, "version"), "anyTimeInterrogation exists in version 3 only")
    elif m.kind is MethodKind.SIP:
        if not m.targets:
            doc.problem((*base, "targets"), "a sip method needs targets")
        for k, t in enumerate(m.targets):
            _ref(doc, (*base, "targets", k), "SIP target", t, names["sip_targets"])
    elif m.kind is MethodKind.LOCAL:
        if m.range_table is None and m.mnp_source is None:
            doc.problem(base, "a local method needs a range_table, an mnp_source or both")
        if m.range_table is not None:
            _ref(doc, (*base, "range_table"), "range table", m.range_table,
                 names["range_tables"])
        if m.mnp_source is not None:
            _ref(doc, (*base, "mnp_source"), "MNP source", m.mnp_source, names["mnp_sources"])


def _check_identity(doc: Document, sections: dict[str, Any]) -> None:
    sccp = sections.get("sccp")
    if sccp is not None and sccp.translation_type != 0:
        doc.problem(("sccp", "translation_type"), "only translation type 0 (TS 29.002 "
                    "§6.1.3, inter-PLMN) is supported in this version")


def _check_listeners(doc: Document, sections: dict[str, Any]) -> None:
    bound: dict[tuple[str, int], str] = {}
    for key in ("http", "admin", "sip", "sip_redirect"):
        sec = sections.get(key)
        if sec is None:
            continue
        why = _address_problem(sec.listen, hostname_ok=True)
        if why:
            doc.problem((key, "listen"), why)
        if sec.port:
            where = (sec.listen, sec.port)
            if where in bound:
                doc.problem((key, "port"), f"{sec.listen}:{sec.port} is already the "
                            f"[{bound[where]}] listener")
            bound.setdefault(where, key)
        tls = getattr(sec, "tls", None)
        if tls is not None:
            for name in ("cert", "key"):
                if not Path(getattr(tls, name)).is_file():
                    doc.problem((key, "tls", name), f"file not found: {getattr(tls, name)}")
    admin = sections.get("admin")
    if admin is not None and not admin.token and not admin.token_env:
        doc.problem(("admin",), "the admin API needs a token: set token_env (or token)")
    if admin is not None and admin.token is not None and len(admin.token) < 16:
        doc.problem(("admin", "token"), "a token needs at least 16 characters")
    storage = sections.get("storage")
    if storage is not None:
        scheme = urlsplit(storage.url).scheme
        if scheme not in ("sqlite", "postgresql", "postgres"):
            doc.problem(("storage", "url"), f"'{storage.url}': the scheme must be sqlite or "
                        "postgresql")
    cache = sections.get("cache")
    if cache is not None:
        parts = urlsplit(cache.url)
        if parts.scheme not in ("memory", "redis", "rediss"):
            doc.problem(("cache", "url"), f"'{cache.url}': the scheme must be memory, redis "
                        "or rediss")
        elif parts.scheme != "memory" and not parts.hostname:
            doc.problem(("cache", "url"), f"'{cache.url}' names no host")
