"""Pure text handling of answers: gold normalisation, answer extraction, exact numbers, letters.

No sympy here and nothing is evaluated: these functions only cut and compare strings, so they are
safe on model-written text and fast enough to decide most answers without a parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

MAX_ANSWER_CHARS = 2000  # longer extracted answers are unparsable without parsing

_THINK_END = "</think>"
_BOX_COMMANDS = ("\\boxed", "\\fbox")
_FINAL_PHRASE = re.compile(r"final answer is[:\s]*(.+?)\s*(?:\.\s|\.$|$|\n)", re.IGNORECASE)
_DOUBLED_COMMAND = re.compile(r"\\\\[A-Za-z]")


def normalize_gold(gold: str) -> str:
    """Strip, and un-double JSON-escaped backslashes (`\\\\frac` → `\\frac`)."""
    text = gold.strip()
    if _DOUBLED_COMMAND.search(text):
        text = text.replace("\\\\", "\\")
    return text


@dataclass(frozen=True)
class Extracted:
    """The answer cut out of a response, and how it was found."""

    text: str | None
    how: str  # "boxed", "phrase", "tail" (the end of the response, for the parser), "none"
    too_long: bool = False


def extract_answer(response: str, cap: int = MAX_ANSWER_CHARS) -> Extracted:
    """Text after the last </think>; then the last \\boxed{}, else 'final answer is …', else the
    response's last `cap` characters for the LaTeX parser to search."""
    text = response.rsplit(_THINK_END, 1)[-1]
    boxed = last_boxed(text)
    if boxed is not None:
        return _capped(boxed, "boxed", cap)
    phrases = _FINAL_PHRASE.findall(text)
    if phrases:
        return _capped(phrases[-1].strip().strip("$").strip(), "phrase", cap)
    tail = text[-cap:].strip()
    return Extracted(tail or None, "tail" if tail else "none")


def _capped(text: str, how: str, cap: int) -> Extracted:
    if len(text) > cap:
        return Extracted(None, how, too_long=True)
    return Extracted(text.strip(), how)


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{…} (or \\fbox{…}) with balanced braces; None if none closes."""
    start = max(text.rfind(cmd) for cmd in _BOX_COMMANDS)
    while start >= 0:
        content = _braced_after(text, start)
        if content is not None:
            return content
        start = max(text.rfind(cmd, 0, start) for cmd in _BOX_COMMANDS)
    return None


def _braced_after(text: str, start: int) -> str | None:
    i = text.find("{", start)
    if i < 0 or not re.fullmatch(r"\\(?:boxed|fbox)\s*", text[start:i]):
        # `\boxed 5` without braces: the token after the command.
        m = re.match(r"\\(?:boxed|fbox)\s+(\S+)", text[start:])
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None


# --- exact numbers -------------------------------------------------------------------------

_WRAPPERS = (
    (re.compile(r"^\$+|\$+$"), ""),
    (re.compile(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}"), r"\1"),
    (re.compile(r"\\[,;:! ]|~"), ""),  # LaTeX spaces
    (re.compile(r"\\left|\\right"), ""),
)
_UNITS = re.compile(r"(\\%|%|\^\s*\{?\\circ\}?|°|\\degree)\s*$")
_ASSIGNMENT = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?!.*=)")
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}((\{,\}|,)\d{3})+(\.\d+)?$")
_DECIMAL = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)$")
_FRACTION = re.compile(r"^([+-])?\\[dt]?frac\{([+-]?\d+)\}\{([+-]?\d+)\}$")
_SLASH = re.compile(r"^([+-]?\d+)\s*/\s*([+-]?\d+)$")


def canonical(text: str) -> str:
    """Remove presentation that never changes a value: $, \\text{}, LaTeX spaces, x = prefixes,
    trailing percent and degree signs (so 4\\% == 4 and 27^\\circ == 27: documented policy)."""
    out = text.strip()
    for pattern, repl in _WRAPPERS:
        out = pattern.sub(repl, out).strip()
    out = _ASSIGNMENT.sub("", out).strip()
    out = _UNITS.sub("", out).strip()
    return out.rstrip(".").strip()


def exact_number(text: str) -> Fraction | None:
    """The exact rational value of a plain integer, decimal or numeric fraction; else None."""
    s = canonical(text).replace(" ", "")
    if _THOUSANDS.match(s):
        s = s.replace("{,}", "").replace(",", "")
    if _DECIMAL.match(s):
        return Fraction(s)
    m = _FRACTION.match(s)
    if m:
        sign, num, den = m.groups()
        value = _ratio(num, den)
        return None if value is None else (-value if sign == "-" else value)
    m = _SLASH.match(s)
    return _ratio(*m.groups()) if m else None


def _ratio(num: str, den: str) -> Fraction | None:
    return None if int(den) == 0 else Fraction(int(num), int(den))


_LETTER = re.compile(r"^\(?([A-Ea-e])\)?(?:[\s.:)].*)?$")


def choice_letter(text: str) -> str | None:
    """A multiple-choice answer: `B`, `(B)`, `\\text{(B)}`, `B) 12` → 'B'."""
    s = canonical(text)
    m = _LETTER.match(s)
    return m.group(1).upper() if m else None
