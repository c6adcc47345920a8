"""Phone numbers as the lookup API takes them: text in, E.164 out, or a clear reason why not.

:func:`parse_number` reads a number written internationally (``+44 7555 100001``,
``447555100001``, ``00447555100001``; spaces, dashes, dots and brackets allowed) with
`phonenumbers` and answers a :class:`Number`: the E.164 digits, the country code, the region
(ISO 3166-1 alpha-2, ``None`` for a non-geographic code such as +882), the number type in the
national plan (``mobile``, ``fixed_line``, ...) and whether the plan has the number at all
(``valid``). Text that is no possible international number raises :class:`InvalidNumber`
with one of :data:`REASONS` (phonenumbers' own reasons, as slugs).

A number can be *possible* (right length for its country) yet *not valid* (in no range the
national plan allocates, or of the wrong length for its range: the UK's drama block
+44 7700 900xxx, +44 7555 123). :func:`InvalidNumber.not_in_plan` is the refusal the lookup
service (:mod:`gateway.lookup`) gives such a number, before any network query.

Verdicts, refusals included, are kept in a bounded in-process memo (:data:`MEMO_SIZE`
entries): a client that sends the same invalid number again costs nothing (the negative
cache for invalid numbers), and the valid ones skip the parser.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, ValidationResult

from gateway.frozen import quick_init

__all__ = ["InvalidNumber", "MAX_INPUT", "MEMO_SIZE", "Number", "REASONS", "mask_imsi",
           "mask_number", "number_type_name", "parse_number"]

#: longest text looked at (a phone number written with every separator fits easily)
MAX_INPUT = 64
#: entries of the verdict memo
MEMO_SIZE = 65536

#: reason slug -> what it means (the ``reason`` of an invalid-number problem)
REASONS: dict[str, str] = {
    "not-a-number": "the text is not a phone number",
    "invalid-country-code": "no country has this calling code",
    "too-short-after-idd": "too short after the international prefix",
    "too-short": "too short for its country's numbering plan",
    "too-long": "too long for its country's numbering plan",
    "invalid-length": "no number of its country's plan has this length",
    "possible-local-only": "only dialable locally, not a full international number",
    "not-in-numbering-plan": "in no range its country's numbering plan allocates",
}

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "invalid-country-code",
    NumberParseException.NOT_A_NUMBER: "not-a-number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too-short-after-idd",
    NumberParseException.TOO_SHORT_NSN: "too-short",
    NumberParseException.TOO_LONG: "too-long",
}
_VALIDATION_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "invalid-country-code",
    ValidationResult.TOO_SHORT: "too-short",
    ValidationResult.TOO_LONG: "too-long",
    ValidationResult.INVALID_LENGTH: "invalid-length",
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "possible-local-only",
}

_TYPE_NAMES = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.UNKNOWN: "unknown",
}
#: every number type name :func:`parse_number` may give
NUMBER_TYPES = tuple(_TYPE_NAMES.values())


def number_type_name(t: int) -> str:
    return _TYPE_NAMES.get(t, "unknown")


class InvalidNumber(ValueError):
    """``text`` is no number the gateway can look up: ``reason`` is one of :data:`REASONS`,
    ``detail`` says it in words (quoting the text)."""

    def __init__(self, text: str, reason: str, detail: str | None = None) -> None:
        self.text = text
        self.reason = reason
        self.detail = detail or f"{_quote(text)} is not a valid international number: " \
            f"{REASONS.get(reason, reason)}"
        super().__init__(self.detail)

    @classmethod
    def not_in_plan(cls, number: Number, text: str | None = None) -> InvalidNumber:
        where = number.region or f"+{number.country_code}"
        return cls(text if text is not None else number.plus, "not-in-numbering-plan",
                   f"{_quote(text if text is not None else number.plus)} is in no range the "
                   f"numbering plan of {where} allocates")


def _quote(text: str) -> str:
    shown = text if len(text) <= MAX_INPUT else text[:MAX_INPUT] + "..."
    return repr(shown)


@quick_init  # (the frozen dataclass's __init__, quicker: see gateway.frozen)
@dataclass(frozen=True, slots=True)
class Number:
    """A possible international number (see the module docstring)."""

    e164: str  # digits, without '+'
    country_code: int
    national: str  # the national significant number
    region: str | None  # ISO 3166-1 alpha-2; None for a non-geographic calling code
    type: str  # one of NUMBER_TYPES
    valid: bool  # the national plan allocates it

    @property
    def plus(self) -> str:
        """``+`` and the E.164 digits."""
        return "+" + self.e164


_memo: OrderedDict[str, Number | InvalidNumber] = OrderedDict()


def parse_number(text: str) -> Number:
    """The number ``text`` writes (see the module docstring); raises :class:`InvalidNumber`."""
    if not isinstance(text, str):
        raise InvalidNumber(str(text), "not-a-number", "a number must be a string")
    found = _memo.get(text)
    if found is None:
        found = _parse(text)
        _memo[text] = found
        if len(_memo) > MEMO_SIZE:
            _memo.popitem(last=False)
    if type(found) is Number:
        return found
    raise found  # type: ignore[misc]


def _parse(text: str) -> Number | InvalidNumber:
    fast = _parse_e164(text)
    if fast is not None:
        return fast
    raw = text.strip().lstrip("(").strip()
    if len(raw) > MAX_INPUT:
        return InvalidNumber(text, "too-long", f"{_quote(text)} is longer than "
                             f"{MAX_INPUT} characters: no phone number is")
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    elif raw[:1].isdigit():
        raw = "+" + raw
    if not raw.startswith("+"):
        return InvalidNumber(text, "not-a-number", f"{_quote(text)} is not a phone number "
                             "written internationally (+, the country code, the number)")
    try:
        parsed = phonenumbers.parse(raw, None)
    except NumberParseException as exc:
        return InvalidNumber(text, _PARSE_REASONS.get(exc.error_type, "not-a-number"))
    if parsed.extension:
        return InvalidNumber(text, "not-a-number", f"{_quote(text)} has an extension: "
                             "give the subscriber number alone")
    result = phonenumbers.is_possible_number_with_reason(parsed)
    if result != ValidationResult.IS_POSSIBLE:
        return InvalidNumber(text, _VALIDATION_REASONS.get(result, "invalid-length"))
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    if len(e164) > 15:  # E.164 §6.1; phonenumbers allows 17 digits for some plans
        return InvalidNumber(text, "too-long")
    nsn = phonenumbers.national_significant_number(parsed)
    region, ntype = _classify(parsed, nsn)
    valid = ntype != PhoneNumberType.UNKNOWN
    if not valid or region in (None, "ZZ", "001"):  # not valid: the code's main region
        region = phonenumbers.region_code_for_country_code(parsed.country_code)
    if region in ("ZZ", "001"):  # a non-geographic code (+800, +882, ...)
        region = None
    return Number(e164, parsed.country_code, nsn, region, number_type_name(ntype), valid)


def _parse_e164(text: str) -> Number | None:
    """The fast path of :func:`_parse` for plain E.164 digits (``447555100001`` or
    ``+447555100001``, nothing else): what phonenumbers' parser would conclude, without its
    text handling, for the numbers where it provably does nothing but split off the country
    code. None (the caller asks phonenumbers) for anything else: separators, an IDD prefix,
    a calling code unknown or non-geographic, a national number starting with 0 or with
    something its region's national prefix pattern matches, fewer than 4 or more than 15
    digits."""
    digits = text[1:] if text[:1] == "+" else text
    n = len(digits)
    if n < 4 or n > 15 or not digits.isdigit() or not digits.isascii() or digits[0] == "0":
        return None
    for size in (1, 2, 3):  # phonenumbers' _extract_country_code: the shortest known code
        cc = int(digits[:size])
        regions = _REGIONS.get(cc)
        if regions is not None:
            break
    else:
        return None
    nsn = digits[size:]
    plan = _plan_of_code(cc, regions)
    if plan is None or len(nsn) < 2 or nsn[0] == "0" or (plan.national_prefix is not None
                                         and plan.national_prefix.match(nsn)):
        return None
    parsed = phonenumbers.PhoneNumber(country_code=cc, national_number=int(nsn))
    result = phonenumbers.is_possible_number_with_reason(parsed)
    if result != ValidationResult.IS_POSSIBLE:
        return InvalidNumber(text, _VALIDATION_REASONS.get(result, "invalid-length"))
    region, ntype = _classify(parsed, nsn)
    valid = ntype != PhoneNumberType.UNKNOWN
    if not valid or region in (None, "ZZ", "001"):
        region = plan.main_region
    return Number(digits, cc, nsn, region, number_type_name(ntype), valid)


class _CodePlan:
    """What the E.164 fast path needs of a calling code, computed once: its main region and
    that region's national prefix pattern (the parser strips what it matches)."""

    __slots__ = ("main_region", "national_prefix")

    def __init__(self, main_region: str, national_prefix: re.Pattern[str] | None) -> None:
        self.main_region = main_region
        self.national_prefix = national_prefix


_REGIONS = phonenumbers.COUNTRY_CODE_TO_REGION_CODE
_CODE_PLANS: dict[int, _CodePlan | None] = {}


def _plan_of_code(cc: int, regions: tuple[str, ...]) -> _CodePlan | None:
    try:
        return _CODE_PLANS[cc]
    except KeyError:
        pass
    plan = None
    main = phonenumbers.region_code_for_country_code(cc)
    if main not in ("ZZ", "001") and "001" not in regions:
        meta = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, main)
        if meta is not None:
            npp = meta.national_prefix_for_parsing
            plan = _CodePlan(main, re.compile(npp) if npp else None)
    _CODE_PLANS[cc] = plan
    return plan


def _classify_public(parsed: phonenumbers.PhoneNumber, nsn: str) -> tuple[str | None, int]:
    """(region, type) through phonenumbers' public API: what :func:`_classify` computes."""
    if not phonenumbers.is_valid_number(parsed):
        return None, PhoneNumberType.UNKNOWN
    return phonenumbers.region_code_for_number(parsed), phonenumbers.number_type(parsed)


#: phonenumbers' type tests after the general description, in its order
_TYPE_DESCS = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE), ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST), ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER), ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN), ("voicemail", PhoneNumberType.VOICEMAIL),
    ("fixed_line", PhoneNumberType.FIXED_LINE), ("mobile", PhoneNumberType.MOBILE),
)


def _desc_test(desc: object, length: int) -> re.Pattern[str] | None:
    """The pattern phonenumbers' ``_is_number_matching_desc`` matches a national number of
    ``length`` digits against, or None when it answers False without matching."""
    if desc is None:
        return None
    lengths = desc.possible_length  # type: ignore[attr-defined]
    pattern = desc.national_number_pattern  # type: ignore[attr-defined]
    if (lengths and length not in lengths) or not pattern:
        return None
    return re.compile(pattern)


class _TypePlan:
    """phonenumbers' ``_number_type_helper`` for one region and one national number
    length, computed once: the general description's pattern, then the type patterns that
    can match numbers of that length joined into one alternation in phonenumbers' order (a
    full match of the alternation is the first type that fully matches, as when they are
    tried one by one), and the mobile pattern for a fixed-line match."""

    __slots__ = ("general", "types", "kinds", "fixed_or_mobile", "mobile")

    def __init__(self, meta: object, length: int) -> None:
        self.general = _desc_test(meta.general_desc, length)  # type: ignore[attr-defined]
        same = bool(meta.same_mobile_and_fixed_line_pattern)  # type: ignore[attr-defined]
        parts = []
        kinds = []
        for name, kind in _TYPE_DESCS:
            if kind == PhoneNumberType.MOBILE and same:
                continue  # phonenumbers tests mobile alone only when its pattern differs
            test = _desc_test(getattr(meta, name), length)
            if test is not None:
                parts.append(f"(?P<t{len(kinds)}>{test.pattern})")
                kinds.append(kind)
        self.types = re.compile("|".join(parts)) if parts else None
        self.kinds = {f"t{i}": k for i, k in enumerate(kinds)}
        self.fixed_or_mobile = same
        self.mobile = _desc_test(meta.mobile, length)  # type: ignore[attr-defined]

    def type_of(self, nsn: str) -> int:
        if self.general is None or self.types is None or self.general.fullmatch(nsn) is None:
            return PhoneNumberType.UNKNOWN
        m = self.types.fullmatch(nsn)
        if m is None:
            return PhoneNumberType.UNKNOWN
        kind = self.kinds[m.lastgroup]  # type: ignore[index]
        if kind == PhoneNumberType.FIXED_LINE and (
                self.fixed_or_mobile or (self.mobile is not None
                                         and self.mobile.fullmatch(nsn) is not None)):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return kind


_TYPE_PLANS: dict[tuple[int, int], _TypePlan] = {}


def _type_of(nsn: str, meta: object) -> int:
    """phonenumbers' ``_number_type_helper(nsn, meta)``, through :class:`_TypePlan`."""
    key = (id(meta), len(nsn))
    plan = _TYPE_PLANS.get(key)
    if plan is None:
        plan = _TYPE_PLANS[key] = _TypePlan(meta, len(nsn))
    return plan.type_of(nsn)


try:  # one pattern match per candidate region instead of four or five passes
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

    def _classify(parsed: phonenumbers.PhoneNumber, nsn: str) -> tuple[str | None, int]:
        """(region, type) of a parsed number, as ``region_code_for_number`` and
        ``number_type`` give them for a valid number; type UNKNOWN for an invalid one.
        phonenumbers' public calls match the number against its region's patterns once
        each (validity, region, type: four or five passes for a shared code such as
        +44); this makes the one pass per candidate region they all start with."""
        cc = parsed.country_code
        regions = COUNTRY_CODE_TO_REGION_CODE.get(cc)
        if not regions:
            return None, PhoneNumberType.UNKNOWN
        if len(regions) == 1:
            meta = PhoneMetadata.metadata_for_region_or_calling_code(cc, regions[0])
            return regions[0], (_type_of(nsn, meta) if meta is not None
                                else PhoneNumberType.UNKNOWN)
        for region in regions:
            meta = PhoneMetadata.metadata_for_region(region, None)
            if meta is None:
                continue
            if meta.leading_digits is not None:
                if _leading(meta.leading_digits).match(nsn):
                    return region, _type_of(nsn, meta)
                continue
            ntype = _type_of(nsn, meta)
            if ntype != PhoneNumberType.UNKNOWN:
                return region, ntype
        return None, PhoneNumberType.UNKNOWN

    _LEADING: dict[str, re.Pattern[str]] = {}

    def _leading(pattern: str) -> re.Pattern[str]:
        found = _LEADING.get(pattern)
        if found is None:
            found = _LEADING[pattern] = re.compile(pattern)
        return found
except ImportError:  # pragma: no cover - a phonenumbers without these internals
    _classify = _classify_public


def mask_number(number: str) -> str:
    """A number fit for a log line or a masked answer: the first two and last two digits
    (``44********01``); shorter numbers are masked whole."""
    plus = "+" if number.startswith("+") else ""
    digits = number[len(plus):]
    if len(digits) <= 4:
        return plus + "*" * len(digits)
    return f"{plus}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def mask_imsi(imsi: str, mnc_length: int = 2) -> str:
    """An IMSI with its MSIN hidden: MCC and MNC stay (they name the home network, which the
    answer shows anyway), every MSIN digit becomes ``*``."""
    keep = 3 + mnc_length
    return imsi[:keep] + "*" * max(0, len(imsi) - keep)
