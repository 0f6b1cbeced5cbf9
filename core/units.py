"""Human-readable numbers with their units, shared by the CLI and the app (GiB = 2**30 bytes, as GPUs report)."""

from __future__ import annotations

GIB = 2**30
MIB = 2**20


def human_bytes(value: float) -> str:
    """Binary units: '16.00 GiB', '512.00 MiB', '900 B'."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(value: int) -> str:
    """Parameter counts: '6.74B', '4.19M', '81.92K'."""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= div:
            return f"{value / div:.2f}{unit}"
    return str(value)
