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
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gateway.config.problems import ConfigProblem

__all__ = ["MnpTable", "PortedNumber", "RangeHolder", "RangeTable", "read_mnp_csv",
           "read_range_csv"]

_E164 = re.compile(r"[1-9][0-9]{0,14}")
_MCCMNC = re.compile(r"[0-9]{5,6}")


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


def read_range_csv(path: str | Path) -> tuple[list[RangeHolder], list[ConfigProblem]]:
    """The ranges of a range-table CSV, and its problems."""
    path = Path(path)
    out: list[RangeHolder] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    try:
        for line, row in _rows(path, "prefix"):
            def bad(msg: str, line: int = line) -> None:
                problems.append(ConfigProblem(str(path), line, "", msg))
            if len(row) < 2 or len(row) > 3:
                bad(f"expected prefix,network[,mccmnc], got {len(row)} columns")
                continue
            prefix = row[0].lstrip("+")
            if not _E164.fullmatch(prefix):
                bad(f"'{row[0]}' is not an E.164 prefix")
                continue
            mccmnc = row[2] if len(row) == 3 and row[2] else None
            if mccmnc is not None and not _MCCMNC.fullmatch(mccmnc):
                bad(f"'{mccmnc}' is not an MCC+MNC (5 or 6 digits)")
                continue
            if not row[1]:
                bad("the network name is empty")
                continue
            if prefix in seen:
                bad(f"prefix {prefix} is already on line {seen[prefix]}")
                continue
            seen[prefix] = line
            out.append(RangeHolder(prefix, row[1], mccmnc))
    except OSError as exc:
        problems.append(ConfigProblem(str(path), None, "", f"cannot read: {exc.strerror or exc}"))
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(ConfigProblem(str(path), None, "", f"not a CSV text file: {exc}"))
    return out, problems


def read_mnp_csv(path: str | Path) -> tuple[list[PortedNumber], list[ConfigProblem]]:
    """The ported numbers of an MNP CSV, and its problems."""
    path = Path(path)
    out: list[PortedNumber] = []
    problems: list[ConfigProblem] = []
    seen: dict[str, int] = {}
    try:
        for line, row in _rows(path, "msisdn"):
            def bad(msg: str, line: int = line) -> None:
                problems.append(ConfigProblem(str(path), line, "", msg))
            if len(row) < 2 or len(row) > 4:
                bad(f"expected msisdn,network[,mccmnc[,routing_number]], got {len(row)} columns")
                continue
            row += [""] * (4 - len(row))
            msisdn = row[0].lstrip("+")
            if not _E164.fullmatch(msisdn):
                bad(f"'{row[0]}' is not an E.164 number")
                continue
            if not row[1]:
                bad("the network name is empty")
                continue
            mccmnc = row[2] or None
            if mccmnc is not None and not _MCCMNC.fullmatch(mccmnc):
                bad(f"'{mccmnc}' is not an MCC+MNC (5 or 6 digits)")
                continue
            rn = row[3].lstrip("+") or None
            if rn is not None and not rn.isdigit():
                bad(f"routing number '{row[3]}' is not digits")
                continue
            if msisdn in seen:
                bad(f"number {msisdn} is already on line {seen[msisdn]}")
                continue
            seen[msisdn] = line
            out.append(PortedNumber(msisdn, row[1], mccmnc, rn))
    except OSError as exc:
        problems.append(ConfigProblem(str(path), None, "", f"cannot read: {exc.strerror or exc}"))
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(ConfigProblem(str(path), None, "", f"not a CSV text file: {exc}"))
    return out, problems
