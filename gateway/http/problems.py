"""Errors of the HTTP API as RFC 9457 problem details (``application/problem+json``).

Every error the API answers is a JSON object with a stable ``type`` URI (clients branch on
it), a ``title`` that goes with the type, the HTTP ``status``, a ``detail`` for this
occurrence and, for some types, extension members (``reason`` of an invalid number,
``retry_after`` of a rate limit, ...):

>>> problem(404, "not-found", detail="no job 7f3e")
>>> raise ProblemError(403, ProblemType.NOT_ENTITLED, detail="...", service="hlr")

:func:`problems_middleware` turns a :class:`ProblemError` raised by any handler, and
aiohttp's own HTTP errors (unknown path, wrong method, body too large), into problem
documents, and an unexpected exception into a 500 that reveals nothing. The types are listed
in :data:`PROBLEM_TYPES` and in docs/api.md.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = [
    "PROBLEM_BASE", "PROBLEM_CONTENT_TYPE", "PROBLEM_TYPES", "ProblemError", "ProblemType",
    "check_number", "invalid_number", "problem", "problem_response", "problems_middleware",
    "type_uri",
]

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://hlr-gateway.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemType(enum.StrEnum):
    """The stable problem types; the URI is :data:`PROBLEM_BASE` + the value."""

    BAD_REQUEST = "bad-request"
    INVALID_NUMBER = "invalid-number"
    UNAUTHENTICATED = "unauthenticated"
    NOT_ENTITLED = "not-entitled"
    NOT_FOUND = "not-found"
    METHOD_NOT_ALLOWED = "method-not-allowed"
    NOT_ACCEPTABLE = "not-acceptable"
    PAYLOAD_TOO_LARGE = "payload-too-large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    RATE_LIMITED = "rate-limited"
    NO_ROUTE = "no-route"
    UPSTREAM_FAILURE = "upstream-failure"
    UPSTREAM_TIMEOUT = "upstream-timeout"
    UNAVAILABLE = "unavailable"
    INTERNAL = "internal-error"


#: type -> (HTTP status, title)
PROBLEM_TYPES: dict[ProblemType, tuple[int, str]] = {
    ProblemType.BAD_REQUEST: (400, "Bad request"),
    ProblemType.INVALID_NUMBER: (400, "Invalid phone number"),
    ProblemType.UNAUTHENTICATED: (401, "Missing or invalid API key"),
    ProblemType.NOT_ENTITLED: (403, "Not entitled to this service"),
    ProblemType.NOT_FOUND: (404, "Not found"),
    ProblemType.METHOD_NOT_ALLOWED: (405, "Method not allowed"),
    ProblemType.NOT_ACCEPTABLE: (406, "Not acceptable"),
    ProblemType.PAYLOAD_TOO_LARGE: (413, "Request body too large"),
    ProblemType.UNSUPPORTED_MEDIA_TYPE: (415, "Unsupported media type"),
    ProblemType.RATE_LIMITED: (429, "Rate limit exceeded"),
    ProblemType.NO_ROUTE: (422, "No route for this number"),
    ProblemType.UPSTREAM_FAILURE: (502, "The network query failed"),
    ProblemType.UPSTREAM_TIMEOUT: (504, "The network did not answer in time"),
    ProblemType.UNAVAILABLE: (503, "Service unavailable"),
    ProblemType.INTERNAL: (500, "Internal error"),
}

_BY_STATUS = {
    400: ProblemType.BAD_REQUEST, 401: ProblemType.UNAUTHENTICATED,
    403: ProblemType.NOT_ENTITLED, 404: ProblemType.NOT_FOUND,
    405: ProblemType.METHOD_NOT_ALLOWED, 406: ProblemType.NOT_ACCEPTABLE,
    413: ProblemType.PAYLOAD_TOO_LARGE, 415: ProblemType.UNSUPPORTED_MEDIA_TYPE,
    429: ProblemType.RATE_LIMITED, 502: ProblemType.UPSTREAM_FAILURE,
    503: ProblemType.UNAVAILABLE, 504: ProblemType.UPSTREAM_TIMEOUT,
}


def type_uri(type_: ProblemType | str) -> str:
    """The URI of a type given as a :class:`ProblemType`, its slug or a full URI."""
    text = str(type_)
    return text if ":" in text else PROBLEM_BASE + text


def _document(status: int, type_: ProblemType | str, title: str | None, detail: str | None,
              ext: dict[str, Any]) -> dict[str, Any]:
    slug = str(type_).removeprefix(PROBLEM_BASE)
    known = PROBLEM_TYPES.get(ProblemType(slug)) if slug in ProblemType._value2member_map_ \
        else None
    doc: dict[str, Any] = {"type": type_uri(type_),
                           "title": title or (known[1] if known else "Error"),
                           "status": status}
    if detail:
        doc["detail"] = detail
    for k, v in ext.items():
        if k not in doc and v is not None:
            doc[k] = v
    return doc


def problem(status: int, type: ProblemType | str, title: str | None = None,
            detail: str | None = None, *, headers: dict[str, str] | None = None,
            **ext: Any) -> web.Response:
    """A problem+json response. ``type`` is a :class:`ProblemType` (or its slug, or any
    URI); ``title`` defaults to the type's; extension members come from ``ext``
    (``None`` values are left out); ``headers`` are added (e.g. Retry-After)."""
    body = json.dumps(_document(status, type, title, detail, ext), separators=(",", ":"))
    return web.Response(status=status, text=body, content_type=PROBLEM_CONTENT_TYPE,
                        headers=headers)


class ProblemError(Exception):
    """Raise from a handler to answer with a problem document (needs
    :func:`problems_middleware`). ``status`` may be None: the type's own status."""

    def __init__(self, status: int | None, type: ProblemType | str, detail: str | None = None,
                 *, title: str | None = None, headers: dict[str, str] | None = None,
                 **ext: Any) -> None:
        slug = str(type).removeprefix(PROBLEM_BASE)
        if status is None:
            status = PROBLEM_TYPES[ProblemType(slug)][0]
        super().__init__(detail or slug)
        self.status = status
        self.type = type
        self.detail = detail
        self.title = title
        self.headers = headers
        self.ext = ext

    def document(self) -> dict[str, Any]:
        """The problem as a JSON-ready dict (a failed batch item keeps this)."""
        return _document(self.status, self.type, self.title, self.detail, self.ext)

    def response(self) -> web.Response:
        return problem(self.status, self.type, self.title, self.detail, headers=self.headers,
                       **self.ext)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problems_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost middleware of the lookup API (see the module docstring)."""
    try:
        return await handler(request)
    except Exception as exc:
        return problem_response(request, exc)


def problem_response(request: web.Request, exc: Exception) -> web.StreamResponse:
    """What :func:`problems_middleware` answers for ``exc`` raised while answering
    ``request``; re-raises an HTTP exception below 400 (a redirect) for aiohttp."""
    if isinstance(exc, ProblemError):
        return exc.response()
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        type_ = _BY_STATUS.get(exc.status, ProblemType.INTERNAL if exc.status >= 500
                               else ProblemType.BAD_REQUEST)
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow",
                                                                           "retry-after")}
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else None
        return problem(exc.status, type_, detail=detail or exc.reason, headers=headers)
    log.error("unexpected error answering %s %s", request.method, request.path,
              exc_info=exc)
    return problem(500, ProblemType.INTERNAL, detail="the gateway could not answer; "
                   "the error is logged")


# --------------------------------------------------------------------------- numbers

_PARSE_REASONS = {  # phonenumbers.NumberParseException.error_type
    "INVALID_COUNTRY_CODE": "invalid-country-code", "NOT_A_NUMBER": "not-a-number",
    "TOO_SHORT_AFTER_IDD": "too-short-after-idd", "TOO_SHORT_NSN": "too-short",
    "TOO_LONG": "too-long",
}
_VALIDATION_REASONS = {  # phonenumbers.ValidationResult
    "IS_POSSIBLE_LOCAL_ONLY": "possible-local-only",
    "INVALID_COUNTRY_CODE": "invalid-country-code", "TOO_SHORT": "too-short",
    "INVALID_LENGTH": "invalid-length", "TOO_LONG": "too-long",
}


def _reason(table: dict[str, str], holder: type, value: int, default: str) -> str:
    for name, reason in table.items():
        if getattr(holder, name, None) == value:
            return reason
    return default


def invalid_number(number: str, reason: str, detail: str | None = None) -> ProblemError:
    """The invalid-number problem (400) with its ``reason``."""
    return ProblemError(400, ProblemType.INVALID_NUMBER,
                        detail or f"{number!r} is not a valid international number: "
                        f"{reason.replace('-', ' ')}", number=number, reason=reason)


def check_number(text: str) -> str:
    """The E.164 digits (no ``+``) of a number written internationally, ``+44 7700 900123``
    or ``447700900123``; raises :class:`ProblemError` invalid-number with phonenumbers'
    reason (``invalid-country-code``, ``not-a-number``, ``too-short``, ``too-long``,
    ``invalid-length``, ``possible-local-only``)."""
    import phonenumbers

    if not isinstance(text, str):
        raise invalid_number(str(text), "not-a-number", "a number must be a JSON string")
    raw = text.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    elif raw[:1].isdigit():
        raw = "+" + raw
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        reason = _reason(_PARSE_REASONS, phonenumbers.NumberParseException, exc.error_type,
                         "not-a-number")
        raise invalid_number(text, reason,
                             f"{text!r} is not a valid international number: {exc._msg}"
                             ) from None
    result = phonenumbers.is_possible_number_with_reason(parsed)
    if result != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise invalid_number(text, _reason(_VALIDATION_REASONS, phonenumbers.ValidationResult,
                                           result, "invalid-length"))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
