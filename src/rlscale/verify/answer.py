"""Pure text handling of answers: gold normalisation, answer extraction, exact numbers, letters.

No sympy here and nothing is evaluated: these functions only cut and compare strings, so they are
safe on model-written text and fast enough to decide most answers without a parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

MAX_ANSWER_CHARS = 2000  # longer extracted answers are unparsable without parsing

_THINK_END = "</think>"
_FINAL_PHRASE = re.compile(r"final answer is[:\s]*(.+?)\s*(?:\.\s|\.$|$|\n)", re.IGNORECASE)
# A doubled backslash before a command, brace or LaTeX space/percent (`\\frac`, `\\{`, `\\!`);
# not before a space or digit, where `\\` is a row break.
_DOUBLED_COMMAND = re.compile(r"\\\\[A-Za-z{}!,;%$]")
_ODD_BACKSLASHES = re.compile(r"(?<!\\)(?:\\\\)*\\(?!\\)")


def normalize_gold(gold: str) -> str:
    """Strip, and un-double JSON-escaped backslashes (`\\\\frac` → `\\frac`).

    A JSON dump doubles every backslash, so a doubled gold has only even runs of backslashes. A
    gold with any odd run (a single `\\end` next to a `\\\\` row break, or `\\\\\\frac`: a row
    break then `\\frac`) is already LaTeX and is kept as it is.
    """
    text = gold.strip()
    if _DOUBLED_COMMAND.search(text) and not _ODD_BACKSLASHES.search(text):
        text = text.replace("\\\\", "\\")
    return text


@dataclass(frozen=True)
class Extracted:
    """The answer cut out of a response, and how it was found.

    `parts` holds each box of a final group of several boxes (`\\boxed{1}, \\boxed{2}`), in order;
    `text` is then those parts joined by ", ". A single answer has one part.
    """

    text: str | None
    how: str  # "boxed", "phrase", "tail" (the end of the response, for the parser), "none"
    too_long: bool = False
    parts: tuple[str, ...] = ()


class Box(NamedTuple):  # a tuple, not a dataclass: cheaper to build, read-only all the same
    """One closed \\boxed{…} (or \\fbox{…}): its content and its span in the text."""

    start: int
    end: int
    content: str


_BRACE = re.compile(r"[{}]")
# Balanced braces up to 4 deep; one-character alternatives that never overlap, so no backtracking
# blow-up on an unclosed box. Deeper nesting falls back to counting braces.
_BALANCED = re.compile(r"\{((?:[^{}]|\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\})*)\}")
_BOX_OPEN = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOX_TOKEN = re.compile(r"\\(?:boxed|fbox)\s+(\S+)")
# What ends a sentence or paragraph: boxes on either side of one are not one answer.
_SENTENCE_BREAK = re.compile(r"[.!?](?:\s|$)|\n\s*\n")


def extract_answer(response: str, cap: int = MAX_ANSWER_CHARS) -> Extracted:
    """Text after the last </think>; then the last explicit final answer — the final group of
    boxes, or a 'final answer is …' that comes after every box — else the response's last `cap`
    characters for the LaTeX parser to search."""
    text = response.rsplit(_THINK_END, 1)[-1]
    group = final_group(text)
    # The later statement wins; only text after the last box can hold a later phrase (a box
    # inside the phrase, "final answer is \boxed{5}", is the later one).
    phrase = _last_phrase(text, group[-1].end if group else 0)
    if phrase is not None:
        return _capped((phrase.group(1).strip().strip("$").strip(),), "phrase", cap)
    if group:
        return _capped(tuple([box.content.strip() for box in group]), "boxed", cap)
    tail = text[-cap:].strip()
    return Extracted(tail or None, "tail" if tail else "none")


def _last_phrase(text: str, start: int) -> re.Match[str] | None:
    found = _FINAL_PHRASE.search(text, start)  # usually None: then no list is built
    return None if found is None else list(_FINAL_PHRASE.finditer(text, found.start()))[-1]


def _capped(parts: tuple[str, ...], how: str, cap: int) -> Extracted:
    text = parts[0] if len(parts) == 1 else ", ".join(parts)
    if len(text) > cap:
        return Extracted(None, how, too_long=True)
    return Extracted(text.strip(), how, parts=parts)


def final_group(text: str) -> list[Box]:
    """The last closed box and the boxes just before it in the same sentence (no sentence end or
    blank line between them): a multi-part answer is written `\\boxed{1}, \\boxed{2}`, and a
    response that boxes rival candidates in one sentence must be judged on all of them. Found
    from the end, so a long response costs only its final sentence."""
    last = _last_box(text)
    if last is None:
        return []
    group = [last]  # from the last box backwards
    while (before := _box_start_before(text, group[-1].start)) >= 0:
        prev = _box_at(text, before)
        # An unclosed box, one holding the group (nested) or a sentence end closes the group.
        if prev is None or prev.end > group[-1].start:
            break
        if _SENTENCE_BREAK.search(text, prev.end, group[-1].start):
            break
        group.append(prev)
    return group[::-1]


def last_boxed(text: str) -> str | None:
    """Content of the last \\boxed{…} (or \\fbox{…}) with balanced braces; None if none closes."""
    box = _last_box(text)
    return box.content if box is not None else None


def _last_box(text: str) -> Box | None:
    start = _box_start_before(text, len(text))
    while start >= 0:
        box = _box_at(text, start)
        if box is not None:
            return box
        start = _box_start_before(text, start)
    return None


def _box_start_before(text: str, stop: int) -> int:
    return max(text.rfind("\\boxed", 0, stop), text.rfind("\\fbox", 0, stop))


def _box_at(text: str, start: int) -> Box | None:
    if start < 0:
        return None
    opening = _BOX_OPEN.match(text, start)
    if opening is None:
        # `\boxed 5` without braces: the token after the command.
        m = _BOX_TOKEN.match(text, start)
        return Box(start, m.end(), m.group(1)) if m else None
    inner = opening.end()
    shallow = _BALANCED.match(text, inner - 1)  # braces nested up to 4 deep, at C speed
    if shallow is not None:
        return Box(start, shallow.end(), shallow.group(1))
    depth = 0
    for brace in _BRACE.finditer(text, inner - 1):  # the regex skips non-braces
        depth += 1 if brace.group() == "{" else -1
        if depth == 0:
            return Box(start, brace.end(), text[inner : brace.start()])
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
# A thousands separator is `,` directly followed by exactly three digits (32,349; 1,000,000):
# `32, 349` is a list of two numbers. LaTeX's number commas `{,}` and `,\!` may be spaced.
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_LATEX_SEPARATOR = re.compile(r"(?:\{,\}|,\\!)\s*(?=\d)")
_SPACED = re.compile(r"\d\s+\d|,\s|\s,")  # two numbers, or a list: never one number
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
    if "," in text:  # LaTeX's number commas, before canonical drops the `\\!`
        text = _LATEX_SEPARATOR.sub(",", text)
    s = canonical(text)
    if s.isascii() and s.isdigit():  # the common case, decided without more regexes
        return Fraction(int(s))
    if _SPACED.search(s):
        return None
    s = s.replace(" ", "")
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
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


_PART_TOKEN = re.compile(r"[()\[\]{},]")
_NUMBER_COMMA = re.compile(r"(?<=\d),(?:\d{3}(?!\d)|\\!)")


def gold_parts(gold: str) -> list[str]:
    """The gold's comma-separated parts outside any brackets: `k = 45, n = 2` has two, `(8,4,2)`,
    `\\{1, 2\\}` and `1,000` (a thousands separator) one each."""
    parts, depth, start = [], 0, 0
    for m in _PART_TOKEN.finditer(gold):
        token = m.group()
        if token in "([{":
            depth += 1
        elif token in ")]}":
            depth -= 1
        elif depth == 0 and not _NUMBER_COMMA.match(gold, m.start()):
            parts.append(gold[start : m.start()].strip())
            start = m.end()
    parts.append(gold[start:].strip())
    return parts


_LABEL = re.compile(r"^\$*\s*([A-Za-z](?:_\{?\w+\}?)?)\s*=(?!.*=)")


def by_label(parts: list[str], boxes: tuple[str, ...]) -> tuple[str, ...] | None:
    """The boxes put in the gold parts' order of labels (`k = 45, n = 2` against `\\boxed{n = 2}`,
    `\\boxed{k = 45}`), when both label every part with the same distinct names; else None."""
    gold_names = [n for n in map(_label_of, parts) if n]
    box_names = [n for n in map(_label_of, boxes) if n]
    labelled = len(gold_names) == len(parts) and len(box_names) == len(boxes)
    if not labelled or len(set(gold_names)) != len(parts) or set(gold_names) != set(box_names):
        return None
    named = dict(zip(box_names, boxes, strict=True))
    return tuple(named[name] for name in gold_names)


def labels_clash(part: str, box: str) -> bool:
    """Both labelled, with different names: `n = 2` is not the part `k = 2`."""
    a, b = _label_of(part), _label_of(box)
    return a is not None and b is not None and a != b


def _label_of(text: str) -> str | None:
    m = _LABEL.match(text.strip())
    return re.sub(r"[{}\s]", "", m.group(1)) if m else None


_LETTER = re.compile(r"^\(?([A-Ea-e])\)?(?:[\s.:)].*)?$")


def choice_letter(text: str) -> str | None:
    """A multiple-choice answer: `B`, `(B)`, `\\text{(B)}`, `B) 12` → 'B'."""
    s = canonical(text)
    m = _LETTER.match(s)
    return m.group(1).upper() if m else None
