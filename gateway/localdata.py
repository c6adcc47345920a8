"""Local number data: range tables (which network holds a number range) and MNP tables (numbers
ported away from their range holder), read from CSV files or the configuration.

CSV files: one record a line, ``#`` starts a comment, blank lines are skipped, and a first
line naming the columns (``prefix,...`` / ``msisdn,...``) is a header.

- range table: ``prefix,network,mccmnc`` (mccmnc optional);
- MNP table: ``msisdn,network,mccmnc,routing_number`` (mccmnc and routing_number optional).

Every problem names the CSV file and line (:class:`~gateway.config.ConfigProblem`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.config.problems import ConfigProblem

__all__ = ["MnpTable", "PortedNumber", "RangeHolder", "RangeTable", "read_mnp_csv",
           "read_range_csv"]

_E164 = re.compile(r"[1-9][0-9]{0,14}")
_MCCMNC = re.compile(r"[0-9]{5,6}")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RangeHolder:
    """A number range and the network that holds it."""

    prefix: str
    network: str
    mccmnc: str | None = None


@dataclass(frozen=True, slots=True)
class PortedNumber:
    """A number ported to ``network`` (TS 23.066: the subscription network)."""

    msisdn: str
    network: str
    mccmnc: str | None = None
    routing_number: str | None = None


class RangeTable:
    """Prefix -> holder; :meth:`lookup` takes the longest matching prefix."""

    __slots__ = ("name", "_ranges", "_lengths")

    def __init__(self, name: str, ranges: Iterable[RangeHolder] = ()) -> None:
        self.name = name
        self._ranges: dict[str, RangeHolder] = {}
        for r in ranges:
            self._ranges[r.prefix] = r
        self._lengths = sorted({len(p) for p in self._ranges}, reverse=True)

    def __len__(self) -> int:
        return len(self._ranges)

    def lookup(self, number: str) -> RangeHolder | None:
        ranges = self._ranges
        for n in self._lengths:
            if n <= len(number):
                found = ranges.get(number[:n])
                if found is not None:
                    return found
        return None


class MnpTable:
    """Ported numbers, by MSISDN."""

    __slots__ = ("name", "_numbers")

    def __init__(self, name: str, numbers: Iterable[PortedNumber] = ()) -> None:
        self.name = name
        self._numbers = {p.msisdn: p for p in numbers}

    def __len__(self) -> int:
        return len(self._numbers)

    def lookup(self, number: str) -> PortedNumber | None:
        return self._numbers.get(number)


def _rows(path: Path, header: str) -> Iterable[tuple[int, list[str]]]:
    first = True
    with path.open(encoding="utf-8", newline="") as f:
        for line_no, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            row = [c.strip() for c in next(csv.reader([text]))]
            if first:
                first = False
                if row[0].lower() == header:
                    continue
            yield line_no, row


def _read_csv(path: str | Path, header: str, dup: str,
              parse: Callable[[list[str]], tuple[str, T] | str]) -> tuple[list[T],
                                                                      list[ConfigProblem]]:
    """The records of a CSV as ``parse`` makes them, and the file's problems: ``parse`` returns
    the record's key and the record, or why the row is refused; a key seen on an earlier line
    is refused as a duplicate ``dup``."""
    path = Path(path)
    out: list[T] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    try:
        for line, row in _rows(path, header):
            parsed = parse(row)
            if isinstance(parsed, str):
                problems.append(ConfigProblem(str(path), line, "", parsed))
                continue
            key, record = parsed
            if key in seen:
                problems.append(ConfigProblem(str(path), line, "",
                                              f"{dup} {key} is already on line {seen[key]}"))
                continue
            seen[key] = line
            out.append(record)
    except OSError as exc:
        problems.append(ConfigProblem(str(path), None, "", f"cannot read: {exc.strerror or exc}"))
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(ConfigProblem(str(path), None, "", f"not a CSV text file: {exc}"))
    return out, problems


def _range_row(row: list[str]) -> tuple[str, RangeHolder] | str:
    if len(row) < 2 or len(row) > 3:
        return f"expected prefix,network[,mccmnc], got {len(row)} columns"
    prefix = row[0].lstrip("+")
    if not _E164.fullmatch(prefix):
        return f"'{row[0]}' is not an E.164 prefix"
    mccmnc = row[2] if len(row) == 3 and row[2] else None
    if mccmnc is not None and not _MCCMNC.fullmatch(mccmnc):
        return f"'{mccmnc}' is not an MCC+MNC (5 or 6 digits)"
    if not row[1]:
        return "the network name is empty"
    return prefix, RangeHolder(prefix, row[1], mccmnc)


def _mnp_row(row: list[str]) -> tuple[str, PortedNumber] | str:
    if len(row) < 2 or len(row) > 4:
        return f"expected msisdn,network[,mccmnc[,routing_number]], got {len(row)} columns"
    row = row + [""] * (4 - len(row))
    msisdn = row[0].lstrip("+")
    if not _E164.fullmatch(msisdn):
        return f"'{row[0]}' is not an E.164 number"
    if not row[1]:
        return "the network name is empty"
    mccmnc = row[2] or None
    if mccmnc is not None and not _MCCMNC.fullmatch(mccmnc):
        return f"'{mccmnc}' is not an MCC+MNC (5 or 6 digits)"
    rn = row[3].lstrip("+") or None
    if rn is not None and not rn.isdigit():
        return f"routing number '{row[3]}' is not digits"
    return msisdn, PortedNumber(msisdn, row[1], mccmnc, rn)


def read_range_csv(path: str | Path) -> tuple[list[RangeHolder], list[ConfigProblem]]:
    """The ranges of a range-table CSV, and its problems."""
    return _read_csv(path, "prefix", "prefix", _range_row)


def read_mnp_csv(path: str | Path) -> tuple[list[PortedNumber], list[ConfigProblem]]:
    """The ported numbers of an MNP CSV, and its problems."""
    return _read_csv(path, "msisdn", "number", _mnp_row)
