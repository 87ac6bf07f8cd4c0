from __future__ import annotations

from fractions import Fraction

import pytest

from rlscale.verify.answer import (
    canonical,
    choice_letter,
    exact_number,
    extract_answer,
    last_boxed,
    normalize_gold,
)


@pytest.mark.parametrize(
    ("response", "text", "how"),
    [
        (r"so the answer is \boxed{\frac{1}{2}}.", r"\frac{1}{2}", "boxed"),
        (r"<think>maybe \boxed{3}</think> it is \boxed{4}", "4", "boxed"),
        (r"<think>\boxed{3}</think> The final answer is 12.", "12", "phrase"),
        (r"\boxed{1}. Then \boxed{\{1, 2\}}", r"\{1, 2\}", "boxed"),  # a new sentence
        (r"\boxed{1} then \boxed{\{1, 2\}}", r"1, \{1, 2\}", "boxed"),  # one sentence: both
        (r"\fbox{7}", "7", "boxed"),
        (r"\boxed 5", "5", "boxed"),
        (r"a \boxed{2} and an unclosed \boxed{", "2", "boxed"),
        ("no box here, just 7", "no box here, just 7", "tail"),
    ],
)
def test_extraction(response: str, text: str, how: str) -> None:
    got = extract_answer(response)
    assert (got.text, got.how) == (text, how)


def test_long_answers_are_unparsable_without_parsing() -> None:
    got = extract_answer(r"\boxed{" + "1+" * 1500 + "1}")
    assert got.too_long and got.text is None
    assert last_boxed(r"\boxed{") is None


def test_gold_normalisation_undoubles_json_backslashes() -> None:
    assert normalize_gold("  \\\\frac{7\\\\pi}{12} ") == r"\frac{7\pi}{12}"
    assert normalize_gold(r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}") == (
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1{,}008{,}016", Fraction(1008016)),
        ("1,008,016", Fraction(1008016)),
        ("x = 5", Fraction(5)),
        (r"4\%", Fraction(4)),  # policy: the percent sign is dropped, 4% == 4
        (r"27^\circ", Fraction(27)),
        (r"27^{\circ}", Fraction(27)),
        (r"\dfrac{3}{8}", Fraction(3, 8)),
        (r"-\frac{3}{8}", Fraction(-3, 8)),
        ("0.375", Fraction(3, 8)),
        ("-7/2", Fraction(-7, 2)),
        (r"\text{12}", Fraction(12)),
        (r"2\sqrt{2}", None),
        ("48\\pi", None),
        ("(1,1,1)", None),
        ("1/0", None),
    ],
)
def test_exact_numbers(text: str, value: Fraction | None) -> None:
    assert exact_number(text) == value


def test_choice_letters() -> None:
    assert [choice_letter(t) for t in ("A", "(b)", r"\text{(C)}", "D) 12", "AB")] == [
        "A",
        "B",
        "C",
        "D",
        None,
    ]
    assert canonical(r"$\text{(E)}$") == "(E)"
