"""Hand-written verifier edge cases (issue 19): LaTeX row breaks in golds, several final boxes,
thousands separators against spaced lists, and a late "final answer is" against an earlier box.
Judged by the real policy and the real math-verify, in this process (no pool, no mocks)."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest

from rlscale.verify.answer import exact_number, extract_answer, gold_parts, normalize_gold
from rlscale.verify.judge import judge

# --- 1. gold normalisation keeps LaTeX row breaks ------------------------------------------

LATEX_GOLDS = [
    r"\begin{pmatrix}x\\y\end{pmatrix}",
    r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
    r"\begin{pmatrix}\frac{1}{2}\\\frac{3}{4}\end{pmatrix}",  # `\\` then `\frac`
    r"\begin{pmatrix}1\\\end{pmatrix}",  # `\\` then `\end`
    r"\begin{bmatrix}a & b\\c & d\end{bmatrix}",
    r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}",
    r"\begin{cases} x & x > 0\\ -x & x \le 0 \end{cases}",
]


@pytest.mark.parametrize("gold", LATEX_GOLDS)
def test_latex_row_breaks_survive_normalisation(gold: str) -> None:
    assert normalize_gold(gold) == gold
    assert normalize_gold(f"  {gold}\n") == gold


@pytest.mark.parametrize(
    "gold", [*LATEX_GOLDS, r"\frac{7\pi}{12}", r"\{1, 2\}", r"70\sqrt{3}", r"10,\!080", r"5\%"]
)
def test_json_doubled_golds_are_undoubled(gold: str) -> None:
    doubled = json.dumps(gold)[1:-1]  # how a JSON dump writes it: every backslash doubled
    assert normalize_gold(doubled) == gold


@pytest.mark.parametrize(
    ("gold", "changed"),
    [
        (r"\begin{pmatrix}x\\y\end{pmatrix}", r"\begin{pmatrix}x\\z\end{pmatrix}"),
        (
            r"\begin{pmatrix}\frac{1}{2}\\\frac{3}{4}\end{pmatrix}",
            r"\begin{pmatrix}\frac{1}{2}\\\frac{3}{5}\end{pmatrix}",
        ),
        (
            r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
            r"\begin{pmatrix} -1 & 0 \\ 0 & 1 \end{pmatrix}",
        ),
        (
            r"\begin{pmatrix} -2 \\ -14 \\ -7 \end{pmatrix}",
            r"\begin{pmatrix} -2 \\ -14 \\ 7 \end{pmatrix}",
        ),
    ],
)
def test_matrix_gold_accepts_itself_and_rejects_a_changed_entry(gold: str, changed: str) -> None:
    assert judge(f"So \\boxed{{{gold}}}", gold) == "correct"
    assert judge(f"So \\boxed{{{gold}}}", json.dumps(gold)[1:-1]) == "correct"
    assert judge(f"So \\boxed{{{changed}}}", gold) == "wrong"


# --- 2. several final boxes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        (r"The roots are \boxed{1}, \boxed{2}, \boxed{3}.", "1, 2, 3"),
        (r"So \boxed{k = 45} and \boxed{n = 2}.", "k = 45, n = 2"),
        (r"So \boxed{n = 2} and \boxed{k = 45}.", "k = 45, n = 2"),  # labels, not order
        (r"So $\boxed{45}$ and $\boxed{2}$.", "k = 45, n = 2"),  # in the gold's order
        ("(a) \\boxed{3}\n(b) \\boxed{\\frac{1}{2}}", r"3, \frac{1}{2}"),
        (r"First \boxed{7}. Hence the answers are \boxed{1}, \boxed{2}.", "1, 2"),
        (r"It is \boxed{5}, that is \boxed{x = 5}.", "5"),  # boxes that agree
        (r"\boxed{(1, 2)}, \boxed{(3, 4)}", "(1, 2), (3, 4)"),
        (r"\boxed{B} \boxed{B}", "B"),
    ],
)
def test_final_boxes_judged_together_accept(response: str, gold: str) -> None:
    assert judge(response, gold) == "correct"


@pytest.mark.parametrize(
    ("response", "gold"),
    [
        (r"Either \boxed{3}, \boxed{5}", "5"),  # rival candidates for a one-part gold
        (r"\boxed{5} or maybe \boxed{3}", "5"),
        ("\\boxed{5}\n\\boxed{3}", "3"),
        (" ".join(f"\\boxed{{{i}}}" for i in range(1, 11)), "7"),  # boxing every candidate
        (" ".join(f"\\boxed{{{i}}}" for i in range(1, 11)), "7, 8"),
        (r"\boxed{A}, \boxed{B}", "A"),
        (r"\boxed{1}, \boxed{2}", "1, 2, 3"),  # too few parts
        (r"\boxed{1}, \boxed{2}, \boxed{3}, \boxed{4}", "1, 2, 3"),  # too many
        (r"\boxed{2}, \boxed{1}", "1, 2"),  # unlabelled parts are a tuple: order counts
        (r"\boxed{2}, \boxed{45}", "k = 45, n = 2"),
        (r"\boxed{k = 45} and \boxed{n = 3}", "k = 45, n = 2"),
        (r"\boxed{k = 45} and \boxed{m = 2}", "k = 45, n = 2"),  # wrong label
        (r"\boxed{k = 2} and \boxed{n = 45}", "k = 45, n = 2"),
    ],
)
def test_final_boxes_judged_together_reject(response: str, gold: str) -> None:
    assert judge(response, gold) == "wrong"


def test_final_group_is_the_last_sentence() -> None:
    assert extract_answer(r"\boxed{1}, \boxed{2}").parts == ("1", "2")
    assert extract_answer("\\boxed{1}.\n\\boxed{2}").parts == ("2",)
    assert extract_answer("\\boxed{1}\n\n\\boxed{2}").parts == ("2",)  # a new paragraph
    assert extract_answer("\\boxed{1}\n(b) \\boxed{2}").parts == ("1", "2")
    assert extract_answer(r"<think>\boxed{1}, </think> \boxed{2}").parts == ("2",)


@pytest.mark.parametrize(
    "content",
    [
        r"\frac{\sqrt{\frac{1}{\sqrt{2}}}}{2}",  # braces 5 deep: counted, not matched by regex
        r"{{{{{{1}}}}}}",
        r"\{1, 2\}",
    ],
)
def test_boxes_with_nested_braces(content: str) -> None:
    assert extract_answer(f"So \\boxed{{{content}}}.").parts == (content,)
    assert extract_answer(f"\\boxed{{1}}, \\boxed{{{content}}}").parts == ("1", content)
    assert extract_answer(f"\\boxed{{1}}, \\boxed{{{content}").parts == ("1",)  # unclosed


@pytest.mark.parametrize(
    ("gold", "parts"),
    [
        ("k = 45, n = 2", ["k = 45", "n = 2"]),
        ("13,7,4", ["13", "7", "4"]),
        ("(8,4,2)", ["(8,4,2)"]),
        (r"\{1, 2\}", [r"\{1, 2\}"]),
        ("[-1, 0)", ["[-1, 0)"]),
        ("1,000,000", ["1,000,000"]),
        (r"10,\!080", [r"10,\!080"]),
        (r"\left( 3, \frac{\pi}{2} \right)", [r"\left( 3, \frac{\pi}{2} \right)"]),
    ],
)
def test_gold_parts(gold: str, parts: list[str]) -> None:
    assert gold_parts(gold) == parts


# --- 3. thousands separators ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("32,349", Fraction(32349)),
        ("1,000,000", Fraction(1000000)),
        ("-1,000.5", Fraction(-2001, 2)),
        (r"1{,}000", Fraction(1000)),
        (r"11,\! 111,\! 111,\! 100", Fraction(11111111100)),  # LaTeX's number comma, spaced
        ("32, 349", None),  # a list of two numbers
        ("1, 000", None),
        ("1 ,000", None),
        ("1 000", None),
        ("3 5", None),
        ("32,34", None),  # not three digits
        ("32,3490", None),
        ("1,00,000", None),
    ],
)
def test_thousands_separators(text: str, value: Fraction | None) -> None:
    assert exact_number(text) == value


@pytest.mark.parametrize(
    ("answer", "gold", "kind"),
    [
        ("32, 349", "32349", "wrong"),
        ("32, 349", "32,349", "wrong"),
        ("1, 000", "1000", "wrong"),
        ("1, 000", "1,000", "wrong"),
        ("3 5", "35", "wrong"),
        ("1 000 000", "1000000", "wrong"),
        ("32,349", "32349", "correct"),
        ("32349", "32,349", "correct"),
        ("1,000,000", "1000000", "correct"),
        (r"1{,}000", "1000", "correct"),
        ("11111111100", r"11,\! 111,\! 111,\! 100", "correct"),
    ],
)
def test_thousands_separators_judged(answer: str, gold: str, kind: str) -> None:
    assert judge(f"Thus \\boxed{{{answer}}}", gold) == kind


# --- 4. the last explicit final answer wins --------------------------------------------------


@pytest.mark.parametrize(
    ("response", "text", "how"),
    [
        (r"Subtotal \boxed{255}. The final answer is $10,455$", "10,455", "phrase"),
        ("We get \\boxed{255}.\nThe final answer is: 10455.", "10455", "phrase"),
        (r"The final answer is $255$. Checking again, \boxed{10455}", "10455", "boxed"),
        (r"The final answer is $\boxed{10455}$.", "10455", "boxed"),  # the box is inside
        ("Therefore the final answer is:\n\n$\\boxed{10455}$", "10455", "boxed"),
    ],
)
def test_last_explicit_final_answer_wins(response: str, text: str, how: str) -> None:
    got = extract_answer(response)
    assert (got.text, got.how) == (text, how)
    assert judge(response, "10455") == "correct"
    assert judge(response, "255") == "wrong"
