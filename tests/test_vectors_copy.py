"""``tests/conformance/vectors.json`` must stay a byte-identical copy of the shared vectors."""

from __future__ import annotations

import pytest

from tests.vectors import LOCAL, SHARED


def test_vectors_copy_is_current():
    if not SHARED.exists():
        pytest.skip(f"no shared vectors at {SHARED} to compare with (plain clone without shared/)")
    assert LOCAL.read_bytes() == SHARED.read_bytes(), (
        f"{LOCAL} differs from {SHARED}; refresh it: cp {SHARED} {LOCAL}"
    )
