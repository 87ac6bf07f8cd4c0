"""Finding (c): k(N) rises with N and saturates.

"Rises" is a trend over every size (the weighted slope of the free k on log N), not two
endpoints. "Saturates" is the paper's saturating k(N) against two forms that grow without limit
(k linear in ln N, k = a·N^b), by a likelihood-ratio test calibrated on simulated slopes
(`fit.kforms`): five sizes over two decades often cannot tell the two apart, and then the
verdict says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlscale.findings.base import DEPARTS, HOLDS, PAPER, UNIDENTIFIED, Finding
from rlscale.fit.estimator import Z95, n_key
from rlscale.fit.kforms import LEVEL, compare_k_forms
from rlscale.units import size_text

RULE = (
    "rises: the weighted slope of the free k (log–log on C) on log10 N over every size has a "
    "95% interval above 0 (falls: below 0; t with sizes − 2 df, scaled by the slopes' scatter); "
    "saturates: the paper's k(N) = Kmax/(1 + N0/N) fits the slopes better than the best of k "
    "linear in ln N and k = a·N^b by more than growth alone gives in 95% of studies simulated "
    f"from either (parametric bootstrap, p < {LEVEL:g}). Holds if k rises and saturates; "
    "departs if k falls or growth beats saturation the same way; else not identifiable"
)


def free_slopes(fit: dict[str, Any]) -> list[tuple[float, float, float]]:
    """Each size's free k and its standard error, from a loglinear fit's 95% intervals."""
    per_n, cis = fit.get("per_N") or {}, fit.get("per_N_ci95") or {}
    out = []
    for key, row in per_n.items():
        ci = (cis.get(key) or {}).get("k")
        if "k" in row and ci is not None and None not in ci and ci[1] > ci[0]:
            out.append((float(key), float(row["k"]), (float(ci[1]) - float(ci[0])) / (2 * Z95)))
    return sorted(out)


def k_rises_and_saturates(fits: dict[str, dict[str, Any]]) -> Finding:
    claim = "k(N) rises with N and saturates"
    ks = free_slopes(fits.get("loglinear-C", {}))
    if len(ks) < 3:
        text = "fewer than three sizes with a free k: no trend or form can be judged"
        return Finding("c", claim, PAPER["c"], text, UNIDENTIFIED, RULE)
    N, k, se = (np.array(col) for col in zip(*ks, strict=True))
    test = compare_k_forms(N, k, se)
    trend = test["trend"]
    direction = "rises" if trend["lo"] > 0 else "falls" if trend["hi"] < 0 else "flat"
    saturates = test["p_saturating"] < LEVEL
    grows = test["p_growth"] < LEVEL
    if direction == "falls":
        verdict, why = DEPARTS, "k falls with N"
    elif direction == "rises" and saturates:
        verdict, why = HOLDS, "k rises, and saturation beats growth"
    elif direction == "rises" and grows:
        verdict, why = DEPARTS, f"k rises without saturating ({test['best_rival']} beats it)"
    elif direction == "rises":
        verdict, why = UNIDENTIFIED, "k rises, but these sizes cannot tell saturation from growth"
    else:
        verdict, why = UNIDENTIFIED, "k does not change beyond its uncertainty"
    ks_text = ", ".join(f"{size_text(n)} {v:.3g} ± {s:.2g}" for n, v, s in ks)
    measured = (
        f"{why}. Free k on C: {ks_text}; slope {trend['slope_per_decade']:+.3g} per decade "
        f"[{trend['lo']:.3g}, {trend['hi']:.3g}]; saturating vs {test['best_rival']}: "
        f"Δχ² {test['delta_chi2']:+.2f}, p(saturation) {test['p_saturating']:.3f}, "
        f"p(growth) {test['p_growth']:.3f}; {_paper_n0(fits.get('paper-C', {}))}"
    )
    numbers = {
        "k": {n_key(n): {"k": v, "se": s} for n, v, s in ks},
        "trend": direction,
        "saturates": bool(saturates),
        "grows": bool(grows),
        "test": test,
    }
    return Finding("c", claim, PAPER["c"], measured, verdict, RULE, numbers=numbers)


def _paper_n0(paper: dict[str, Any]) -> str:
    """The paper law's N0 as fitted, for reference (it does not decide the verdict)."""
    params, cis = paper.get("params") or {}, paper.get("ci95") or {}
    kmax, n0 = params.get("Kmax"), params.get("N0")
    ci = [v for v in cis.get("N0") or [] if v is not None]
    if not (paper.get("converged") and kmax and n0):
        return "the paper law on C: " + str(paper.get("message") or "no fit")
    band = f" [{size_text(ci[0])}, {size_text(ci[1])}]" if len(ci) == 2 and ci[0] > 0 else ""
    ratio = ratio_interval(paper, kmax / n0)
    per = f"; Kmax/N0 [{ratio[0]:.3g}, {ratio[1]:.3g}] per parameter" if ratio else ""
    return f"the paper law on C: N0 {size_text(n0)}{band}, Kmax {kmax:.3g}{per}"


def ratio_interval(fit: dict[str, Any], ratio: float | None) -> list[float] | None:
    """95% interval of Kmax/N0 from the fit's covariance (delta method in log space)."""
    cov = fit.get("covariance") or {}
    names = list(cov.get("names") or [])
    if ratio is None or ratio <= 0 or not {"Kmax", "N0"} <= set(names):
        return None
    m = np.asarray(cov["matrix"], dtype=float)
    i, j = names.index("Kmax"), names.index("N0")
    # Internal units are log for log-scale parameters; a linear one's variance becomes
    # relative (var(log x) ≈ var(x)/x²).
    scale = np.ones(len(names))
    for k, name in ((i, "Kmax"), (j, "N0")):
        if not cov["log_scale"][k]:
            scale[k] = 1.0 / float(fit["params"][name])
    var = m[i, i] * scale[i] ** 2 + m[j, j] * scale[j] ** 2 - 2 * m[i, j] * scale[i] * scale[j]
    if not np.isfinite(var) or var < 0:
        return None
    # an unidentified ratio's interval is unbounded (inf), not an overflow
    width = float(np.exp(min(Z95 * np.sqrt(var), 700.0)))
    return [ratio / width, ratio * width]
