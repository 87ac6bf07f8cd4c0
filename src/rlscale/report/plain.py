"""A study's findings as tables, rendered to Markdown and to a self-contained HTML page."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rlscale.units import size_text


@dataclass(frozen=True)
class Table:
    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    note: str = ""


def fmt(value: Any, digits: int = 3) -> str:
    """Numbers for people: significant digits, '—' for missing or non-finite values."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return (
            f"{value:.{digits}g}"
            if abs(value) >= 1e4 or abs(value) < 1e-3
            else f"{value:.{digits}f}"
        )
    return str(value)


def _interval(ci: Sequence[float | None] | None) -> str:
    """A 95% interval; one spanning more than six decades (or to infinity) says so instead."""
    if not ci:
        return "—"
    lo, hi = ci
    if hi is None or lo is None or (lo > 0 and hi / lo > 1e6):
        return "[unbounded]"
    return f"[{fmt(lo)}, {fmt(hi)}]"


RUN_COLUMNS = (
    ("run", "run"),
    ("N", "N"),
    ("τ", "tau"),
    ("seed", "seed"),
    ("state", "state"),
    ("steps", "steps"),
    ("L start", "L_start"),
    ("L final", "L_final"),
    ("C (paper FLOPs)", "flops_paper"),
    ("total FLOPs", "flops_total"),
    ("wall s", "wall_s"),
)


FINDINGS_TITLE = "The paper's findings in this study"


def findings_table(summary: dict[str, Any] | None) -> Table | None:
    """One row per finding of arXiv:2509.25300: the paper's figure, this study's measurement
    with its uncertainty, the verdict computed from them and where the study departs from the
    paper; the study's departures from the paper's protocol in the note."""
    block = (summary or {}).get("paper_findings")
    if not block:
        return None
    rows: list[tuple[str, ...]] = [
        (
            f"({f['key']}) {f['claim']}",
            str(f["verdict"]),
            str(f["measured"]),
            str(f["paper"]),
            str(f["departure"] or "—"),
        )
        for f in block["findings"]
    ]
    rules = " ".join(f"({f['key']}) {f['rule']}." for f in block["findings"])
    departures = "; ".join(block["departures"])
    note = f"Verdicts: {rules}"
    families = (summary or {}).get("families")
    if families:
        note += (
            f" Findings (a)–(d) and the per-size figures and tables are of the study's first "
            f"family, {families['names'][0]}; the model-family figures and tables compare "
            f"{', '.join(families['names'])}."
        )
    if departures:
        note += f" Protocol departures from the paper: {departures}."
    return Table(
        FINDINGS_TITLE,
        ("finding", "verdict", "this study", "the paper", "departs from the paper in"),
        rows,
        note,
    )


def study_tables(
    summary: dict[str, Any], runs: list[dict[str, Any]], fits: dict[str, Any]
) -> list[Table]:
    findings = findings_table(summary)
    tables = [findings] if findings is not None else []
    tables += [
        Table(
            "Runs",
            tuple(title for title, _ in RUN_COLUMNS),
            [tuple(fmt(r.get(key)) for _, key in RUN_COLUMNS) for r in runs],
        ),
        Table(
            "Per size: curve shape and slope",
            ("N", "R² log–log", "R² exp-decay", "k (free per size)", "k 95%", "k(N) paper law"),
            [
                (
                    *(fmt(s.get(k)) for k in ("N", "r2_loglog", "r2_exp", "k_loglinear")),
                    _interval(s.get("k_loglinear_ci95")),
                    fmt(s.get("k_paper")),
                )
                for s in summary["per_size"]
            ],
            "R² in ln L within each size: log–log is log L = −k·log C + E, "
            "exp-decay log L = −b·C + E.",
        ),
        fit_table(fits, summary["k_rises_with_N"]),
    ]
    paper = summary["paper_C"]
    tables.append(
        Table(
            "The paper's law on C",
            ("Kmax", "N0", "Kmax/N0", "converged", "note"),
            [
                (
                    f"{fmt(paper['Kmax']['value'])} {_interval(paper['Kmax']['ci95'])}",
                    f"{fmt(paper['N0']['value'])} {_interval(paper['N0']['ci95'])}",
                    f"{fmt(paper['k_per_N']['value'])} {_interval(paper['k_per_N']['ci95'])}",
                    fmt(bool(paper["converged"])),
                    str(paper["message"] or ""),
                )
            ],
            "k(N) = Kmax/(1 + N0/N). Were N0 far above every size, k(N) ≈ (Kmax/N0)·N and only "
            "the ratio would be identified: hence its column.",
        )
    )
    if summary["equal_compute"]:
        sizes = list(summary["equal_compute"][0]["L"])
        tables.append(
            Table(
                "L at equal compute",
                ("C (FLOPs)", *(f"N={s}" for s in sizes), "larger sizes lower"),
                [
                    (fmt(e["C"]), *(fmt(e["L"][s]) for s in sizes), fmt(e["larger_lower"]))
                    for e in summary["equal_compute"]
                ],
                "Each size's L interpolated (log-linear in C); — where its run did not span that "
                "budget. Sizes are compared where at least two are present.",
            )
        )
    if summary["reuse"]:
        tables.append(
            Table(
                _reuse_title(summary.get("reuse_of")),
                ("τ", "unique prompts", "L at step 0", "final L", "± se", "se from", "seeds"),
                [
                    (
                        tau,
                        fmt(r["unique_prompts"]),
                        fmt(r.get("start_L")),
                        fmt(r["final_L"]),
                        fmt(r["final_L_se"]),
                        str(r.get("se_kind", "—")),
                        fmt(r["seeds"]),
                    )
                    for tau, r in sorted(summary["reuse"].items(), key=lambda kv: int(kv[0]))
                ],
            )
        )
    return tables + family_tables(summary.get("families"))


def _reuse_title(of: dict[str, Any] | None) -> str:
    if not of:
        return "Data reuse"
    family = f"family {of['family']}, " if of.get("family") else ""
    return f"Data reuse ({family}model {of['model']})"


def family_tables(families: dict[str, Any] | None) -> list[Table]:
    """A study of several families: their paper-law parameters side by side (with the joint
    fit's verdict), and their L at equal compute for each size they share."""
    if not families:
        return []
    names = families["names"]
    per = families["per_family"]
    rows = [
        (p, *(f"{fmt(per[f][p]['value'])} {_interval(per[f][p]['ci95'])}" for f in names))
        for p in ("Kmax", "N0", "k_per_N")
    ]
    rows.append(("R² (ln L)", *(fmt(per[f].get("r2")) for f in names)))
    rows.append(("converged", *(fmt(bool(per[f].get("converged"))) for f in names)))
    joint = families.get("joint") or {}
    note = "Each family's own fit of the paper's law on C (its fits are in fits/<family>/)."
    if joint.get("verdict"):
        note += f" One k(N) for all families: {joint['verdict']} (the joint fit below)."
    elif joint.get("reason"):
        note += f" No joint fit: {joint['reason']}."
    tables = [Table("Model families: the paper's law on C", ("", *names), rows, note)]
    if joint.get("shared"):
        tables.append(joint_table(joint))
    equal = families.get("equal_compute") or []
    if equal:
        tables.append(
            Table(
                "Model families: L at equal compute, same N",
                ("N", "C (FLOPs)", *names, "lower"),
                [
                    (size_text(e["N"]), fmt(e["C"]), *_family_values(e["L"], names), e["lower"])
                    for e in equal
                ],
                "Each family's L interpolated (log-linear in C) over the compute range all "
                "families' runs of that size span.",
            )
        )
    return tables


def joint_table(joint: dict[str, Any]) -> Table:
    """The joint fit: one (Kmax, N0) for every family against each family's own, on the sizes
    they share, with the evidence and the verdict."""
    shared = joint["shared"]
    rows = [_joint_row("one k(N), every family", shared)]
    rows += [
        _joint_row(f"{f}: its own k(N)", m) for f, m in joint["separate"]["per_family"].items()
    ]
    evidence = (
        f"AIC {fmt(joint['aic']['shared'])} vs {fmt(joint['aic']['separate'])}, BIC "
        f"{fmt(joint['bic']['shared'])} vs {fmt(joint['bic']['separate'])} (one k(N) vs one per "
        f"family; effective n {joint['n_eff']:.0f})."
    )
    sizes = ", ".join(size_text(n) for n in joint["sizes"])
    return Table(
        "Model families: one k(N) or one per family?",
        ("model", "Kmax", "N0", "converged"),
        rows,
        f"Fitted on the sizes every family has ({sizes}), E free per family and size. "
        f"{evidence} Verdict: {joint['verdict']} — {joint['reason']}.",
    )


def _joint_row(name: str, model: dict[str, Any]) -> tuple[str, ...]:
    params, ci = model.get("params") or {}, model.get("ci95") or {}
    values = (f"{fmt(params.get(p))} {_interval(ci.get(p))}" for p in ("Kmax", "N0"))
    return (name, *values, fmt(bool(model.get("converged"))))


def _family_values(L: dict[str, float | None], names: list[str]) -> tuple[str, ...]:
    return tuple(fmt(L.get(f)) for f in names)


def fit_table(fits: dict[str, Any], k_rises: dict[str, bool | None]) -> Table:
    """One row per fit: convergence, R², RMSE and the global parameters with intervals."""
    return Table(
        "Fits",
        ("fit", "converged", "R²", "RMSE ln L", "parameters (95% interval)", "k rises with N"),
        [
            (
                name,
                fmt(bool(f.get("converged"))),
                fmt(f.get("r2")),
                fmt(f.get("rmse_log")),
                "; ".join(
                    f"{p} {fmt(v)} {_interval((f.get('ci95') or {}).get(p))}"
                    for p, v in (f.get("params") or {}).items()
                )
                or (f.get("message") if not f.get("converged") else "per size only"),
                fmt(k_rises.get(name)),
            )
            for name, f in fits.items()
        ],
    )


def to_markdown(title: str, tables: Sequence[Table]) -> str:
    lines = [f"# {title}", ""]
    for t in tables:
        lines += [f"## {t.title}", ""]
        lines += ["| " + " | ".join(t.headers) + " |", "|" + "---|" * len(t.headers)]
        lines += ["| " + " | ".join(row) + " |" for row in t.rows]
        lines += (["", t.note] if t.note else []) + [""]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;margin:1rem;max-width:70rem;line-height:1.4}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}p.note{color:#555}
table.prose th{text-align:left}
table.prose td{white-space:normal;text-align:left;vertical-align:top}"""
PROSE_CHARS = 60  # a table with cells this long wraps its text instead of scrolling sideways


def html_table(t: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in t.headers)
    rows = ("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    note = f"<p class=note>{esc(t.note)}</p>" if t.note else ""
    prose = any(len(c) > PROSE_CHARS for row in t.rows for c in row)
    kind = " class=prose" if prose else ""
    table = f"<table{kind}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    return f"<h2>{esc(t.title)}</h2>{table}{note}"
