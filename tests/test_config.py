"""The configuration: the line locator, and each class of problem with its file, line, key
path and message (gateway.config)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from gateway.config import (
    SIP_NOT_AVAILABLE,
    SIP_TLS_NOT_AVAILABLE,
    ConfigInvalid,
    ConfigProblem,
    LineIndex,
    MethodKind,
    check_file,
    format_path,
    load_config,
)

GOOD = """\
[sccp]
global_title = "447700900000"

[map]
smsc_address = "447700900000"

[[associations]]
name = "a1"
transport = "tcp"
remote_addresses = ["127.0.0.1"]
remote_port = 2905
routing_context = 100
opc = 1
dpc = 2

[[linksets]]
name = "ls"
associations = ["a1"]

[[routes]]
name = "uk"
prefixes = ["44"]

  [[routes.methods]]
  kind = "map_sri_sm"
  linkset = "ls"

[[routes]]
name = "default"
default = true

  [[routes.methods]]
  kind = "reject"
"""


def write(tmp_path: Path, text: str, name: str = "gw.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def problems(tmp_path: Path, text: str, **files: str) -> list[ConfigProblem]:
    for name, content in files.items():
        write(tmp_path, content, name.replace("__", "/"))
    path = write(tmp_path, text)
    config, found = check_file(path)
    assert config is None and found
    return found


def one(found: list[ConfigProblem], key: str) -> ConfigProblem:
    hits = [p for p in found if p.key_path == key]
    assert len(hits) == 1, (key, [str(p) for p in found])
    return hits[0]


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based line of the nth line containing ``needle``."""
    seen = 0
    for i, line in enumerate(textwrap.dedent(text).splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == nth:
                return i
    raise AssertionError(needle)


# --------------------------------------------------------------------------- line locator


LOCATOR = """\
# a comment
include = ["x.toml"]   # trailing comment
[sccp]
global_title = "4477"
"quoted key" = 1
a.b.c = 'literal'

[[routes]]
name = "r0"
text = \"\"\"
multi
line \\\"\"\" still inside
\"\"\"
  [[routes.methods]]
  kind = "reject"
  [[routes.methods]]
  kind = "local"
  [routes.breaker]
  failures = 3

[[routes]]
name = "r1"
prefixes = [
  "44",   # UK
  "49",
]
methods = [{ kind = "reject", reason = "x" },
           { kind = "local",
             range_table = "t" }]
inline = { x = 1, y = [1, 2] }
"""


def test_locator_maps_key_paths_to_lines() -> None:
    idx = LineIndex.scan(LOCATOR)
    expect = {
        ("include",): 2, ("include", 0): 2, ("sccp",): 3, ("sccp", "global_title"): 4,
        ("sccp", "quoted key"): 5, ("sccp", "a", "b", "c"): 6,
        ("routes",): 8, ("routes", 0): 8, ("routes", 0, "name"): 9, ("routes", 0, "text"): 10,
        ("routes", 0, "methods", 0): 14, ("routes", 0, "methods", 0, "kind"): 15,
        ("routes", 0, "methods", 1): 16, ("routes", 0, "methods", 1, "kind"): 17,
        ("routes", 0, "breaker"): 18, ("routes", 0, "breaker", "failures"): 19,
        ("routes", 1): 21, ("routes", 1, "name"): 22, ("routes", 1, "prefixes"): 23,
        ("routes", 1, "prefixes", 0): 24, ("routes", 1, "prefixes", 1): 25,
        ("routes", 1, "methods", 0): 27, ("routes", 1, "methods", 0, "reason"): 27,
        ("routes", 1, "methods", 1): 28, ("routes", 1, "methods", 1, "range_table"): 29,
        ("routes", 1, "inline", "y", 1): 30,
    }
    for path, line in expect.items():
        assert idx.exact(path) == line, (path, idx.exact(path), line)


def test_locator_falls_back_to_the_enclosing_table() -> None:
    idx = LineIndex.scan(LOCATOR)
    assert idx.line_of(("routes", 0, "methods", 1, "linkset")) == 16  # missing key: its table
    assert idx.line_of(("routes", 1, "timeout")) == 21
    assert idx.line_of(("nothing",)) is None


def test_locator_survives_broken_text() -> None:
    idx = LineIndex.scan('[sccp]\nglobal_title = "1"\nbroken = "unterminated\n[map]\n')
    assert idx.exact(("sccp", "global_title")) == 2


def test_format_path() -> None:
    assert format_path(("routes", 2, "methods", 0, "linkset")) == "routes[2].methods[0].linkset"
    assert format_path(("sccp", "quoted key")) == 'sccp."quoted key"'


# --------------------------------------------------------------------------- a good file


def test_good_file_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert config.sccp.global_title == "447700900000"
    assert config.routes[0].methods[0].kind is MethodKind.MAP_SRI_SM
    assert config.associations[0].routing_context == 100
    assert config.linkset("ls").associations == ("a1",)


def test_load_config_raises_with_every_problem(tmp_path: Path) -> None:
    bad = GOOD.replace("opc = 1", "opc = 99999").replace('remote_port = 2905',
                                                         'remote_port = "x"')
    with pytest.raises(ConfigInvalid) as info:
        load_config(write(tmp_path, bad))
    keys = {p.key_path for p in info.value.problems}
    assert keys == {"associations[0].opc", "associations[0].remote_port"}
    assert info.value.report().endswith("2 problems found")


# --------------------------------------------------------------------------- problem classes


def test_wrong_type(tmp_path: Path) -> None:
    text = GOOD.replace("remote_port = 2905", 'remote_port = "2905"')
    p = one(problems(tmp_path, text), "associations[0].remote_port")
    assert p.file == str(tmp_path / "gw.toml")
    assert p.line == line_of(text, "remote_port")
    assert p.message == "must be an integer, not a string"


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ("remote_port = 2905", "remote_port = 70000", "associations[0].remote_port",
     "70000 is out of range 1..65535"),
    ("opc = 1", "opc = 16384", "associations[0].opc", "16384 is out of range 0..16383"),
    ("dpc = 2", "dpc = -1", "associations[0].dpc", "-1 is out of range 0..16383"),
    ("routing_context = 100", "routing_context = 4294967296",
     "associations[0].routing_context", "4294967296 is out of range 0..4294967295"),
    ("dpc = 2", "dpc = 2\nni = 4", "associations[0].ni", "4 is out of range 0..3"),
    ('global_title = "447700900000"', 'global_title = "447700900000"\nssn = 255',
     "sccp.ssn", "255 is out of range 2..254"),
    ('smsc_address = "447700900000"', 'smsc_address = "447700900000"\ntimer_m = 0',
     "map.timer_m", "0.0 is out of range 0.001..600"),
    ('associations = ["a1"]', 'associations = ["a1"]\ntps = 0', "linksets[0].tps",
     "must be greater than 0, not 0.0"),
    ('prefixes = ["44"]', 'prefixes = ["44"]\ntps = -5', "routes[0].tps",
     "must be greater than 0, not -5.0"),
])
def test_out_of_range(tmp_path: Path, old: str, new: str, key: str, message: str) -> None:
    text = GOOD.replace(old, new, 1)
    p = one(problems(tmp_path, text), key)
    assert p.message == message
    assert p.line == line_of(text, new.splitlines()[-1])


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    text = GOOD.replace("routing_context = 100", "routing_contxt = 100")
    found = problems(tmp_path, text)
    p = one(found, "associations[0].routing_contxt")
    assert p.message == "unknown key 'routing_contxt'; did you mean 'routing_context'?"
    assert p.line == line_of(text, "routing_contxt")
    top = one(problems(tmp_path, GOOD + "\n[cahce]\nurl = 'memory://'\n"), "cahce")
    assert top.message == "unknown section or key 'cahce'; did you mean 'cache'?"
    enum = one(problems(tmp_path, GOOD.replace('kind = "reject"', 'kind = "rejct"')),
               "routes[1].methods[0].kind")
    assert enum.message == ("'rejct' is not one of map_sri_sm, map_ati, sip, local, reject; "
                            "did you mean 'reject'?")


def test_missing_required(tmp_path: Path) -> None:
    text = GOOD.replace("dpc = 2\n", "")
    p = one(problems(tmp_path, text), "associations[0].dpc")
    assert p.message.startswith("missing required key 'dpc'")
    assert p.line == line_of(text, "[[associations]]")  # the table it is missing from
    no_map = GOOD.replace('[map]\nsmsc_address = "447700900000"\n', "")
    p = one(problems(tmp_path, no_map), "map")
    assert (p.line, p.message) == (None, "missing required section [map]")


@pytest.mark.parametrize(("old", "new", "key", "start"), [
    ('global_title = "447700900000"', 'global_title = "44 77"', "sccp.global_title",
     "'44 77' is not a global title"),
    ('smsc_address = "447700900000"', 'smsc_address = "0447700900000"', "map.smsc_address",
     "'0447700900000' is not E.164 digits"),
    ('prefixes = ["44"]', 'prefixes = ["44", "4x"]', "routes[0].prefixes[1]",
     "'4x' is not E.164 digits"),
    ('linkset = "ls"', 'linkset = "ls"\n  called_gt = "hlr"', "routes[0].methods[0].called_gt",
     "'hlr' is neither 'msisdn' nor a global title"),
    ('prefixes = ["44"]', 'prefixes = ["4477009001234567"]', "routes[0].prefixes[0]",
     "'4477009001234567' is not E.164 digits"),
])
def test_bad_digits(tmp_path: Path, old: str, new: str, key: str, start: str) -> None:
    text = GOOD.replace(old, new)
    p = one(problems(tmp_path, text), key)
    assert p.message.startswith(start), p.message
    assert p.line == line_of(text, new.splitlines()[-1])


def test_duplicate_names(tmp_path: Path) -> None:
    text = GOOD.replace('name = "default"', 'name = "uk"')
    p = one(problems(tmp_path, text), "routes[1].name")
    assert p.message == f"duplicate name 'uk': also routes[0] at {tmp_path / 'gw.toml'}:" \
        f"{line_of(text, '[[routes]]')}"
    assert p.line == line_of(text, 'name = "uk"', 2)


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ('linkset = "ls"', 'linkset = "lx"', "routes[0].methods[0].linkset",
     "unknown link set 'lx'; did you mean 'ls'?"),
    ('associations = ["a1"]', 'associations = ["a2"]', "linksets[0].associations[0]",
     "unknown association 'a2'; did you mean 'a1'?"),
    ('kind = "reject"', 'kind = "local"\n  mnp_source = "ported"',
     "routes[1].methods[0].mnp_source", "unknown MNP source 'ported'"),
    ('kind = "reject"', 'kind = "local"\n  range_table = "uk"',
     "routes[1].methods[0].range_table", "unknown range table 'uk'"),
])
def test_unknown_references(tmp_path: Path, old: str, new: str, key: str, message: str) -> None:
    text = GOOD.replace(old, new)
    p = one(problems(tmp_path, text), key)
    assert p.message == message
    assert p.line == line_of(text, new.splitlines()[-1])


def test_sip_method_and_its_targets(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "reject"', 'kind = "sip"\n  targets = ["np1", "np9"]') + \
        '\n[[sip_targets]]\nname = "np1"\nuri = "sip:np.example.net:5060"\n'
    found = problems(tmp_path, text)
    assert one(found, "routes[1].methods[0].targets[1]").message == \
        "unknown SIP target 'np9'; did you mean 'np1'?"
    assert len(found) == 1  # sip methods are accepted; only the unknown target is refused
    config, found = check_file(write(tmp_path, text.replace('["np1", "np9"]', '["np1"]')))
    assert found == [] and config is not None
    assert config.routes[1].methods[0].targets == ("np1",)


def test_sip_mnp_sources_and_tls_targets_are_refused(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "reject"', 'kind = "sip"\n  targets = ["np1"]') + \
        '\n[[sip_targets]]\nname = "np1"\nuri = "sip:np.example.net:5060"\n' \
        'transport = "tls"\n' \
        '\n[[sip_targets]]\nname = "np2"\nuri = "sips:np.example.net"\n' \
        '\n[[mnp_sources]]\nname = "np"\nkind = "sip"\ntargets = ["np2"]\n'
    found = problems(tmp_path, text)
    assert one(found, "mnp_sources[0].kind").message == SIP_NOT_AVAILABLE
    assert one(found, "sip_targets[0].transport").message == SIP_TLS_NOT_AVAILABLE
    assert one(found, "sip_targets[1].uri").message == SIP_TLS_NOT_AVAILABLE
    assert len(found) == 3


def test_prefix_duplicates(tmp_path: Path) -> None:
    text = GOOD.replace("default = true", 'default = true\nprefixes = ["49", "44"]')
    p = one(problems(tmp_path, text), "routes[1].prefixes[1]")
    first = line_of(text, 'prefixes = ["44"]')
    assert p.message == (f"prefix 44 is also claimed by route 'uk' ({tmp_path / 'gw.toml'}:"
                         f"{first}): only the first can ever match")
    twice = one(problems(tmp_path, GOOD.replace('["44"]', '["44", "44"]')),
                "routes[0].prefixes[1]")
    assert twice.message == "prefix 44 is listed twice"


def test_prefix_hidden_by_longer_prefixes(tmp_path: Path) -> None:
    hiders = ", ".join(f'"44{d}"' for d in range(10))
    text = GOOD.replace("default = true", f"default = true\nprefixes = [{hiders}]")
    p = one(problems(tmp_path, text), "routes[0].prefixes[0]")
    assert p.message.startswith("prefix 44 can never match: every digit that can follow it "
                                "starts a longer prefix: 440 (default), 441 (default)")
    # nine of ten continuations: 449... still reaches route uk, so nothing is hidden
    nine = ", ".join(f'"44{d}"' for d in range(9))
    config, found = check_file(write(tmp_path, GOOD.replace(
        "default = true", f"default = true\nprefixes = [{nine}]")))
    assert found == [] and config is not None


def test_default_route(tmp_path: Path) -> None:
    text = GOOD.replace("default = true", 'prefixes = ["49"]')
    p = one(problems(tmp_path, text), "routes")
    assert p.message.startswith("no default route")
    two = GOOD.replace('prefixes = ["44"]', 'prefixes = ["44"]\ndefault = true')
    p = one(problems(tmp_path, two), "routes[1].default")
    assert p.message.startswith("only one route may be the default")
    never = one(problems(tmp_path, GOOD.replace("default = true", "")), "routes[1].prefixes")
    assert never.message == ("a route with no prefixes that is not the default can never "
                             "match")


def test_method_needs_and_misplaced_keys(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "map_sri_sm"\n  linkset = "ls"',
                        'kind = "map_ati"\n  reason = "x"\n  version = 2')
    found = problems(tmp_path, text)
    assert one(found, "routes[0].methods[0].linkset").message == \
        "a map_ati method needs a linkset"
    assert one(found, "routes[0].methods[0].reason").message == \
        "'reason' does not apply to a map_ati method"
    assert one(found, "routes[0].methods[0].version").message == \
        "anyTimeInterrogation exists in version 3 only"
    after = GOOD.replace('kind = "reject"', 'kind = "reject"\n  [[routes.methods]]\n'
                         '  kind = "map_sri_sm"\n  linkset = "ls"')
    p = one(problems(tmp_path, after), "routes[1].methods[1]")
    assert p.message == "comes after a reject method, so it can never run"


def test_linkset_members_share_the_routing_label(tmp_path: Path) -> None:
    text = GOOD.replace('associations = ["a1"]', 'associations = ["a1", "a2"]') + """
[[associations]]
name = "a2"
transport = "tcp"
remote_addresses = ["127.0.0.2"]
opc = 1
dpc = 3
"""
    p = one(problems(tmp_path, text), "linksets[0].associations")
    assert "must share OPC, DPC and NI" in p.message and "a2: opc 1 dpc 3" in p.message


def test_include_resolves_relative_and_locates_in_the_included_file(tmp_path: Path) -> None:
    main = GOOD.split("[[routes]]")[0] + 'include = ["routes/all.toml"]\n'
    main = 'include = ["routes/all.toml"]\n' + GOOD.split("[[routes]]")[0]
    routes = "[[routes]]" + "[[routes]]".join(GOOD.split("[[routes]]")[1:])
    (tmp_path / "routes").mkdir()
    write(tmp_path, routes.replace('linkset = "ls"', 'linkset = "lz"'), "routes/all.toml")
    found = problems(tmp_path, main)
    p = one(found, "routes[0].methods[0].linkset")
    assert p.file == str(tmp_path / "routes" / "all.toml")
    assert p.line == line_of(routes, 'linkset = "ls"')
    write(tmp_path, routes, "routes/all.toml")
    config = load_config(tmp_path / "gw.toml")
    assert [r.name for r in config.routes] == ["uk", "default"]
    assert config.include == (str(tmp_path / "routes" / "all.toml"),)


def test_include_not_found(tmp_path: Path) -> None:
    text = 'include = ["nowhere.toml"]\n' + GOOD
    p = one(problems(tmp_path, text), "include[0]")
    assert (p.line, p.message) == (1, f"included file not found: {tmp_path / 'nowhere.toml'}")


def test_include_cycle(tmp_path: Path) -> None:
    write(tmp_path, 'include = "b.toml"\n', "a.toml")
    write(tmp_path, '\ninclude = ["a.toml"]\n', "b.toml")
    text = 'include = ["a.toml"]\n' + GOOD
    found = problems(tmp_path, text)
    p = one(found, "include[0]")
    assert p.file == str(tmp_path / "b.toml") and p.line == 2
    assert p.message == (f"include cycle: {tmp_path / 'a.toml'} -> {tmp_path / 'b.toml'} -> "
                         f"{tmp_path / 'a.toml'}")


def test_section_in_two_files(tmp_path: Path) -> None:
    write(tmp_path, '[sccp]\nglobal_title = "1"\n', "more.toml")
    p = one(problems(tmp_path, 'include = ["more.toml"]\n' + GOOD), "sccp")
    assert p.message.startswith(f"already defined in {tmp_path / 'more.toml'}:1")


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    text = GOOD.replace("opc = 1", "opc = = 1")
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].line == line_of(text, "opc = = 1")
    assert found[0].message.startswith("TOML syntax: ")


def test_file_not_found(tmp_path: Path) -> None:
    config, found = check_file(tmp_path / "none.toml")
    assert config is None
    assert [str(p) for p in found] == [f"{tmp_path / 'none.toml'}: file not found: "
                                       f"{tmp_path / 'none.toml'}"]


def test_data_files_and_their_lines(tmp_path: Path) -> None:
    (tmp_path / "ranges.csv").write_text("prefix,network,mccmnc\n44,uk,23415\n4x,bad,1\n"
                                         "44,again,23415\n")
    text = GOOD.replace('kind = "reject"', 'kind = "local"\n  range_table = "r"') + \
        '\n[[range_tables]]\nname = "r"\nfile = "ranges.csv"\n' \
        '\n[[mnp_sources]]\nname = "m"\nkind = "file"\nfile = "missing.csv"\n'
    found = problems(tmp_path, text)
    csv = [p for p in found if p.file.endswith("ranges.csv")]
    assert [(p.line, p.message) for p in csv] == [
        (3, "'4x' is not an E.164 prefix"), (4, "prefix 44 is already on line 2")]
    assert one(found, "mnp_sources[0].file").message == \
        f"file not found: {tmp_path / 'missing.csv'}"


def test_listeners_tls_and_urls(tmp_path: Path) -> None:
    text = GOOD + """
[http]
port = 8081
[admin]
port = 8081
token_env = ""
[admin.tls]
cert = "cert.pem"
key = "key.pem"
[cache]
url = "memcached://x"
"""
    found = problems(tmp_path, text)
    assert one(found, "admin.port").message == "127.0.0.1:8081 is already the [http] listener"
    assert one(found, "admin.tls.cert").message == f"file not found: {tmp_path / 'cert.pem'}"
    assert one(found, "admin").message.startswith("the admin API needs a token")
    assert one(found, "cache.url").message.startswith("'memcached://x': the scheme must be")


def test_every_problem_is_printable(tmp_path: Path) -> None:
    text = GOOD.replace("opc = 1", "opc = 99999")
    (p,) = problems(tmp_path, text)
    assert str(p) == f"{tmp_path / 'gw.toml'}:{line_of(text, 'opc')}: associations[0].opc: " \
        "99999 is out of range 0..16383"
    assert os.path.isabs(p.file)
