"""Mobile networks by MCC/MNC, by name and by number: what turns an IMSI, a range holder or a
global title into a network name and a country.

- **MCC -> country** (ITU-T E.212): :data:`MCC_COUNTRIES`, bundled.
- **MCC/MNC -> network**: a small bundled table of the networks we know (:data:`KNOWN`:
  the operators of the simulator's example network and the main ones of a few countries),
  each with the names phonenumbers' carrier data uses for its ranges; plus what the
  configuration's range tables say (``prefix,network,mccmnc``), added with
  :meth:`NetworkDirectory.learn`.
- **number -> range holder** (:meth:`NetworkDirectory.range_holder`): the longest prefix of
  the configured range tables, else phonenumbers' carrier data (the network the range was
  allocated to; after a port it may no longer serve the number).
- **global title -> country** (:func:`country_of_gt`): the country of the GT's calling code
  (phonenumbers), e.g. the serving MSC's.

A network is the same network under each of its MCC/MNC pairs (EE is 234-30 and 234-33):
:meth:`NetworkInfo.same_network` compares networks, not codes, so a number answered with
EE's other MNC is not reported as ported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import phonenumbers
from phonenumbers.carrierdata import CARRIER_DATA, CARRIER_LONGEST_PREFIX

from protocols.tbcd import THREE_DIGIT_MNC_MCCS

__all__ = ["KNOWN", "MCC_COUNTRIES", "KnownNetwork", "NetworkDirectory", "NetworkInfo",
           "RangeMatch", "carrier_range", "country_name", "country_of_gt"]

#: E.212 mobile country codes -> ISO 3166-1 alpha-2 (the main ones; 310..316 are all US)
MCC_COUNTRIES: dict[str, str] = {
    "202": "GR", "204": "NL", "206": "BE", "208": "FR", "212": "MC", "213": "AD", "214": "ES",
    "216": "HU", "218": "BA", "219": "HR", "220": "RS", "222": "IT", "225": "VA", "226": "RO",
    "228": "CH", "230": "CZ", "231": "SK", "232": "AT", "234": "GB", "235": "GB", "238": "DK",
    "240": "SE", "242": "NO", "244": "FI", "246": "LT", "247": "LV", "248": "EE", "250": "RU",
    "255": "UA", "257": "BY", "259": "MD", "260": "PL", "262": "DE", "266": "GI", "268": "PT",
    "270": "LU", "272": "IE", "274": "IS", "276": "AL", "278": "MT", "280": "CY", "282": "GE",
    "283": "AM", "284": "BG", "286": "TR", "288": "FO", "290": "GL", "292": "SM", "293": "SI",
    "294": "MK", "295": "LI", "297": "ME", "302": "CA", "308": "PM", "310": "US", "311": "US",
    "312": "US", "313": "US", "314": "US", "315": "US", "316": "US", "330": "PR", "334": "MX",
    "338": "JM", "342": "BB", "344": "AG", "346": "KY", "348": "VG", "350": "BM", "352": "GD",
    "354": "MS", "356": "KN", "358": "LC", "360": "VC", "362": "CW", "363": "AW", "364": "BS",
    "365": "AI", "366": "DM", "368": "CU", "370": "DO", "372": "HT", "374": "TT", "376": "TC",
    "400": "AZ", "401": "KZ", "402": "BT", "404": "IN", "405": "IN", "410": "PK", "412": "AF",
    "413": "LK", "414": "MM", "415": "LB", "416": "JO", "417": "SY", "418": "IQ", "419": "KW",
    "420": "SA", "421": "YE", "422": "OM", "424": "AE", "425": "IL", "426": "BH", "427": "QA",
    "428": "MN", "429": "NP", "430": "AE", "431": "AE", "432": "IR", "434": "UZ", "436": "TJ",
    "437": "KG", "438": "TM", "440": "JP", "441": "JP", "450": "KR", "452": "VN", "454": "HK",
    "455": "MO", "456": "KH", "457": "LA", "460": "CN", "466": "TW", "470": "BD", "472": "MV",
    "502": "MY", "505": "AU", "510": "ID", "514": "TL", "515": "PH", "520": "TH", "525": "SG",
    "528": "BN", "530": "NZ", "537": "PG", "539": "TO", "540": "SB", "541": "VU", "542": "FJ",
    "602": "EG", "603": "DZ", "604": "MA", "605": "TN", "606": "LY", "607": "GM", "608": "SN",
    "609": "MR", "610": "ML", "611": "GN", "612": "CI", "613": "BF", "614": "NE", "615": "TG",
    "616": "BJ", "617": "MU", "618": "LR", "619": "SL", "620": "GH", "621": "NG", "622": "TD",
    "623": "CF", "624": "CM", "625": "CV", "626": "ST", "627": "GQ", "628": "GA", "629": "CG",
    "630": "CD", "631": "AO", "632": "GW", "633": "SC", "634": "SD", "635": "RW", "636": "ET",
    "637": "SO", "638": "DJ", "639": "KE", "640": "TZ", "641": "UG", "642": "BI", "643": "MZ",
    "645": "ZM", "646": "MG", "647": "RE", "648": "ZW", "649": "NA", "650": "MW", "651": "LS",
    "652": "BW", "653": "SZ", "654": "KM", "655": "ZA", "657": "ER", "659": "SS", "702": "BZ",
    "704": "GT", "706": "SV", "708": "HN", "710": "NI", "712": "CR", "714": "PA", "716": "PE",
    "722": "AR", "724": "BR", "730": "CL", "732": "CO", "734": "VE", "736": "BO", "738": "GY",
    "740": "EC", "744": "PY", "746": "SR", "748": "UY", "750": "FK",
}


@dataclass(frozen=True, slots=True)
class KnownNetwork:
    """A network of the bundled table: its MCC/MNC pairs (the first is its main one) and the
    names phonenumbers' carrier data gives its ranges in its country."""

    name: str
    country: str
    mccmncs: tuple[str, ...]
    carriers: tuple[str, ...] = ()


#: the networks we know (see the module docstring)
KNOWN: tuple[KnownNetwork, ...] = (
    # United Kingdom: the example network's operators, and Three
    KnownNetwork("O2 UK", "GB", ("23410", "23411", "23402"), ("O2",)),
    KnownNetwork("Vodafone UK", "GB", ("23415",), ("Vodafone",)),
    KnownNetwork("Three UK", "GB", ("23420",), ("Three",)),
    KnownNetwork("EE", "GB", ("23430", "23433", "23431", "23432"), ("EE", "Orange")),
    # Germany
    KnownNetwork("Telekom Deutschland", "DE", ("26201", "26206"), ("T-Mobile",)),
    KnownNetwork("Vodafone GmbH", "DE", ("26202", "26204", "26209"), ("Vodafone",)),
    KnownNetwork("Telefónica Germany", "DE", ("26203", "26207", "26208", "26205", "26277"),
                 ("O2", "Eplus")),
    KnownNetwork("1&1 Mobilfunk", "DE", ("26223",), ("1&1 Mobilfunk",)),
    # France
    KnownNetwork("Orange France", "FR", ("20801", "20802"), ("Orange France",)),
    KnownNetwork("SFR", "FR", ("20810", "20811", "20813"), ("SFR",)),
    KnownNetwork("Free Mobile", "FR", ("20815", "20816"), ("Free Mobile",)),
    KnownNetwork("Bouygues Telecom", "FR", ("20820", "20821", "20888"), ("Bouygues",)),
    # Spain
    KnownNetwork("Vodafone Spain", "ES", ("21401", "21406"), ("Vodafone",)),
    KnownNetwork("Orange Spain", "ES", ("21403", "21409"), ("Orange",)),
    KnownNetwork("Yoigo", "ES", ("21404",), ("Yoigo",)),
    KnownNetwork("Movistar", "ES", ("21407", "21405"), ("Movistar",)),
    # Italy
    KnownNetwork("TIM", "IT", ("22201",), ("TIM",)),
    KnownNetwork("Vodafone Italia", "IT", ("22210",), ("Vodafone",)),
    KnownNetwork("WINDTRE", "IT", ("22288", "22299"), ("WIND", "3 Italia")),
    KnownNetwork("Iliad Italia", "IT", ("22250",), ()),
    # Netherlands, Belgium, Austria, Switzerland
    KnownNetwork("KPN", "NL", ("20408", "20469"), ("KPN",)),
    KnownNetwork("Vodafone NL", "NL", ("20404",), ("Vodafone Libertel B.V.",)),
    KnownNetwork("Odido", "NL", ("20416", "20420"), ("T-Mobile",)),
    KnownNetwork("Proximus", "BE", ("20601",), ("Proximus",)),
    KnownNetwork("Orange Belgium", "BE", ("20610",), ()),
    KnownNetwork("Telenet", "BE", ("20620",), ("Telenet",)),
    KnownNetwork("A1 Austria", "AT", ("23201", "23211"), ("A1 TA",)),
    KnownNetwork("Magenta Telekom", "AT", ("23203", "23207"), ("T-Mobile AT",)),
    KnownNetwork("Drei Austria", "AT", ("23205", "23210"), ("Three",)),
    KnownNetwork("Swisscom", "CH", ("22801",), ("Swisscom",)),
    KnownNetwork("Sunrise", "CH", ("22802",), ("Sunrise",)),
    KnownNetwork("Salt", "CH", ("22803",), ("Salt",)),
    # United States
    KnownNetwork("T-Mobile US", "US", ("310260", "310160", "310200", "310210", "310220",
                                       "310230", "310240", "310250", "310660", "310800"), ()),
    KnownNetwork("AT&T Mobility", "US", ("310410", "310150", "310170", "310280", "310380",
                                         "310560", "310680"), ()),
    KnownNetwork("Verizon Wireless", "US", ("311480", "310004", "310010", "310012", "310013",
                                            "311110", "311270", "311390"), ()),
)


_COUNTRY_NAMES: dict[str, str | None] = {}


def country_name(region: str | None) -> str | None:
    """The English name of an ISO 3166-1 alpha-2 region (from phonenumbers' locale data)."""
    if not region:
        return None
    found = _COUNTRY_NAMES.get(region, "?")
    if found != "?":
        return found
    from phonenumbers.geodata.locale import LOCALE_DATA

    names = LOCALE_DATA.get(region) or {}
    name = names.get("en", "")
    if name.startswith("*"):
        name = names.get(name[1:], "")
    if len(_COUNTRY_NAMES) < 1000:
        _COUNTRY_NAMES[region] = name or None
    return name or None


_GT_COUNTRY: dict[str, str | None] = {}


def country_of_gt(gt: str | None) -> str | None:
    """The region of a global title's calling code (a valid number's own region when the
    code is shared, e.g. +1), or None."""
    if not gt:
        return None
    digits = gt.lstrip("+")
    found = _GT_COUNTRY.get(digits, "?")
    if found != "?":
        return found
    region: str | None = None
    try:
        parsed = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is not None:
        region = phonenumbers.region_code_for_number(parsed)
        if region in (None, "ZZ", "001"):
            region = phonenumbers.region_code_for_country_code(parsed.country_code)
        if region in ("ZZ", "001"):
            region = None
    if len(_GT_COUNTRY) < 100_000:
        _GT_COUNTRY[digits] = region
    return region


@dataclass(frozen=True, slots=True)
class NetworkInfo:
    """A network as an answer names it. ``mcc``/``mnc`` are None when only its name is known
    (a range holder from phonenumbers' carrier data)."""

    name: str | None
    country: str | None
    mcc: str | None = None
    mnc: str | None = None
    key: str | None = field(default=None, compare=False)  # identity across its MCC/MNCs

    @property
    def mccmnc(self) -> str | None:
        return self.mcc + self.mnc if self.mcc is not None and self.mnc is not None else None

    def same_network(self, other: NetworkInfo) -> bool | None:
        """Whether both name one network; None when that cannot be told."""
        if self.key is not None and other.key is not None:
            return self.key == other.key
        if self.mccmnc is not None and other.mccmnc is not None:
            return self.mccmnc == other.mccmnc
        if self.name and other.name:
            if self.country and other.country and self.country != other.country:
                return False
            return self.name.casefold() == other.name.casefold()
        return None

    def as_dict(self) -> dict[str, object]:
        """The network as answers show it. The same dict object for equal networks: do not
        change it (copy it to add to it)."""
        # first by identity (the directory hands out the same objects again and again):
        # no call of the dataclass's __hash__, which hashes a tuple of every field. The
        # entry holds the object itself, so its id is not reused while it is there.
        seen = _AS_DICT_BY_ID.get(id(self))
        if seen is not None and seen[0] is self:
            return seen[1]
        found = _AS_DICT.get(self)
        if found is None:
            found = {"name": self.name, "mcc": self.mcc, "mnc": self.mnc,
                     "country": self.country, "country_name": country_name(self.country)}
            if len(_AS_DICT) < 10_000:
                _AS_DICT[self] = found
        if len(_AS_DICT_BY_ID) < 10_000:
            _AS_DICT_BY_ID[id(self)] = (self, found)
        return found


_AS_DICT: dict[NetworkInfo, dict[str, object]] = {}
_AS_DICT_BY_ID: dict[int, tuple[NetworkInfo, dict[str, object]]] = {}
#: entries each memo of a NetworkDirectory keeps at most
_MEMO_MAX = 50_000


@dataclass(frozen=True, slots=True)
class RangeMatch:
    """The range a number falls in and who holds it."""

    prefix: str  # E.164 digits
    holder: NetworkInfo | None
    source: str  # "range_table:NAME" or "phonenumbers"


def carrier_range(e164: str) -> tuple[str, str] | None:
    """(prefix, carrier name) of phonenumbers' carrier data for E.164 digits ``e164``: the
    longest prefix that has an English name."""
    for n in range(min(CARRIER_LONGEST_PREFIX, len(e164)), 0, -1):
        names = CARRIER_DATA.get(e164[:n])
        if names:
            name = names.get("en")
            if name:
                return e164[:n], name
    return None


class NetworkDirectory:
    """See the module docstring. One per gateway; :meth:`learn` adds the configuration's
    range tables (called again on reload with the new tables)."""

    def __init__(self, known: Iterable[KnownNetwork] = KNOWN) -> None:
        self._by_code: dict[str, tuple[str, str, str]] = {}  # mccmnc -> (name, country, key)
        self._by_carrier: dict[tuple[str, str], str] = {}  # (country, carrier) -> mccmnc
        for net in known:
            key = net.mccmncs[0]
            for code in net.mccmncs:
                self._by_code[code] = (net.name, net.country, key)
            for carrier in net.carriers:
                self._by_carrier.setdefault((net.country, carrier.casefold()), key)
        self._known_codes = dict(self._by_code)
        self._tables: list[tuple[str, dict[str, tuple[str, str | None]], tuple[int, ...]]] = []
        # what by_mccmnc and range_holder built, by their inputs (the same objects again:
        # an answer names a few hundred networks and ranges, not one per lookup); emptied
        # by learn()
        self._info: dict[tuple[str, str], NetworkInfo] = {}
        self._matches: dict[tuple[str, str, str | None], RangeMatch] = {}

    # ---- the configuration's range tables

    def learn(self, tables: Iterable[tuple[str, Iterable[tuple[str, str, str | None]]]]
              ) -> None:
        """Replace the range tables: ``(table name, [(prefix, network, mccmnc), ...])``. A
        network named with an MCC/MNC the bundled table does not know is added under the
        table's name for it."""
        self._by_code = dict(self._known_codes)
        self._tables = []
        self._info = {}
        self._matches = {}
        for name, rows in tables:
            entries: dict[str, tuple[str, str | None]] = {}
            for prefix, network, mccmnc in rows:
                entries[prefix] = (network, mccmnc)
                if mccmnc and mccmnc not in self._by_code:
                    self._by_code[mccmnc] = (network, MCC_COUNTRIES.get(mccmnc[:3], ""),
                                             mccmnc)
            self._tables.append((name, entries, tuple(sorted({len(p) for p in entries},
                                                             reverse=True))))

    def in_range_tables(self, e164: str) -> bool:
        return any(self._table_match(e164, t) for t in self._tables)

    @staticmethod
    def _table_match(e164: str, table) -> tuple[str, str, str | None] | None:
        _, entries, lengths = table
        for n in lengths:
            if n <= len(e164):
                hit = entries.get(e164[:n])
                if hit is not None:
                    return e164[:n], hit[0], hit[1]
        return None

    # ---- look-ups

    def by_mccmnc(self, mcc: str, mnc: str) -> NetworkInfo:
        """The network of an MCC/MNC (its name None when we do not know it)."""
        info = self._info.get((mcc, mnc))
        if info is not None:
            return info
        hit = self._by_code.get(mcc + mnc)
        if hit is not None:
            name, country, key = hit
            info = NetworkInfo(name, country or MCC_COUNTRIES.get(mcc), mcc, mnc, key)
        else:
            info = NetworkInfo(None, MCC_COUNTRIES.get(mcc), mcc, mnc, None)
        if len(self._info) < _MEMO_MAX:
            self._info[(mcc, mnc)] = info
        return info

    def from_mccmnc(self, mccmnc: str) -> NetworkInfo:
        """:meth:`by_mccmnc` for a 5- or 6-digit string."""
        return self.by_mccmnc(mccmnc[:3], mccmnc[3:6])

    def from_imsi(self, imsi: str) -> NetworkInfo:
        """The home network of an IMSI. Where the MNC length is not fixed by the MCC, a
        known 3-digit MCC/MNC wins over the 2-digit reading."""
        mcc = imsi[:3]
        if mcc in THREE_DIGIT_MNC_MCCS or imsi[:6] in self._by_code:
            return self.by_mccmnc(mcc, imsi[3:6])
        return self.by_mccmnc(mcc, imsi[3:5])

    def by_carrier(self, region: str | None, carrier: str) -> NetworkInfo:
        """The network phonenumbers' carrier data names (in ``region``)."""
        code = self._by_carrier.get((region or "", carrier.casefold()))
        if code is not None:
            return self.from_mccmnc(code)
        return NetworkInfo(carrier, region, None, None, None)

    def range_holder(self, e164: str, region: str | None) -> RangeMatch | None:
        """Who holds the range of E.164 digits ``e164``: the configured range tables (the
        longest prefix across them), else phonenumbers' carrier data; None if neither
        knows."""
        best: tuple[str, str, str | None, str] | None = None
        for table in self._tables:
            hit = self._table_match(e164, table)
            if hit is not None and (best is None or len(hit[0]) > len(best[0])):
                best = (*hit, table[0])
        if best is not None:
            prefix, network, mccmnc, table_name = best
            memo = (prefix, table_name, region)
            match = self._matches.get(memo)
            if match is not None:
                return match
            if mccmnc:
                info = self.from_mccmnc(mccmnc)
                if info.name is None:
                    info = NetworkInfo(network, info.country, info.mcc, info.mnc, info.key)
            else:
                info = NetworkInfo(network, region, None, None, None)
            match = RangeMatch(prefix, info, f"range_table:{table_name}")
        else:
            carried = carrier_range(e164)
            if carried is None:
                return None
            prefix, carrier = carried
            memo = (prefix, "\x00phonenumbers", region)
            match = self._matches.get(memo)
            if match is not None:
                return match
            match = RangeMatch(prefix, self.by_carrier(region, carrier), "phonenumbers")
        if len(self._matches) < _MEMO_MAX:
            self._matches[memo] = match
        return match
