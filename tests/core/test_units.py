"""interpose.model.units.human_size: the one size formatter (dump output and the TUI)."""
from __future__ import annotations

import pytest

from interpose.model.units import human_size


@pytest.mark.parametrize(("n", "text"), [
    (None, ""), (0, "0b"), (1, "1b"), (1023, "1023b"), (1024, "1.0k"), (1536, "1.5k"), (10 * 1024, "10k"),
    (1023 * 1024, "1023k"), (5 * 1024**2, "5.0m"), (300 * 1024**2, "300m"), (3 * 1024**3, "3.0g"),
    (2048 * 1024**3, "2048g"),
])
def test_short(n, text):
    assert human_size(n) == text


@pytest.mark.parametrize(("n", "text"), [
    (None, ""), (0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1234, "1.2 KiB"), (12345, "12.1 KiB"),
    (1024**2, "1.0 MiB"), (5 * 1024**3, "5.0 GiB"), (2048 * 1024**3, "2048.0 GiB"),
])
def test_long(n, text):
    assert human_size(n, long=True) == text
