"""Numbers as people write them: 7B, 1.5M, 3e21."""

from __future__ import annotations

from rlscale.errors import InputError

SUFFIXES = {"k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}


def parse_number(text: str, what: str) -> float:
    """'72e9', '72B', '1.5M', '3e21' → float; a clear InputError otherwise."""
    raw = text.strip()
    scale = 1.0
    if raw and raw[-1] in SUFFIXES:
        raw, scale = raw[:-1], SUFFIXES[raw[-1]]
    try:
        return float(raw) * scale
    except ValueError:
        raise InputError(f"{what}: not a number: {text!r}") from None


def size_text(N: float) -> str:
    """A parameter count for people: 1.5B, 411k."""
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(N) >= scale:
            return f"{N / scale:.3g}{unit}"
    return f"{N:.3g}"
