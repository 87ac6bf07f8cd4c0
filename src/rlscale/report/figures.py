"""The report's figures as SVG text (matplotlib, Agg): data and FitResults in, no files.

Each function returns a `Figure` (title, SVG, caption) or None when its data is absent. Text is
drawn as paths, so the SVG needs no fonts. A fit that did not converge is never drawn as a
curve: the figure shows the data and says so in its caption.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rlscale.fit.estimator import Z95, LawFit
from rlscale.fit.laws import k_of_N


@dataclass(frozen=True)
class Figure:
    title: str
    svg: str
    caption: str = ""


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "figure.dpi": 100, "font.size": 9})
    return plt


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _plt().close(fig)
    return buf.getvalue()


def size_label(size: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g}{unit}"
    return f"{size:g}"


def _colors(n: int) -> list[Any]:
    cmap = _plt().get_cmap("viridis")
    return [cmap(0.85 * i / max(n - 1, 1)) for i in range(n)]


def _fit_state(fit: dict[str, Any] | None) -> tuple[LawFit | None, str]:
    """The fitted law when it converged, else None and why it is not drawn."""
    if not fit:
        return None, "no fit given"
    if not fit.get("converged"):
        return None, f"fit did not converge ({fit.get('message', 'no reason given')}): not drawn"
    try:
        return LawFit.from_summary(fit), ""
    except Exception as exc:  # a FitResult from another version: show the data anyway
        return None, f"fit could not be read ({exc}): not drawn"


def loss_curves(
    table: pd.DataFrame,
    x: str,
    fit: dict[str, Any] | None,
    fallback: dict[str, Any] | None = None,
) -> Figure | None:
    """L against C or D per size on log–log axes: points, and the fitted law's lines; when that
    fit did not converge, the per-size `fallback` fit (dashed), if it did."""
    if table.empty or x not in table:
        return None
    plt = _plt()
    law, note = _fit_state(fit)
    style = "-"
    caption = note
    if law is None and fallback is not None:
        law, _ = _fit_state(fallback)
        if law is not None:
            style = "--"
            caption = f"{note}. Dashed: {_describe(fallback, x)}."
    elif law is not None and fit is not None:
        caption = f"Lines: {_describe(fit, x)}."
    sizes = sorted(table["N"].unique())
    seeds = _seeds_per_size(table)
    if seeds > 1:
        band = f"Points: the mean of {seeds} seeds at each step; shaded: ± 1 SD across seeds."
        caption = f"{caption} {band}".strip()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for color, size in zip(_colors(len(sizes)), sizes, strict=True):
        rows = table[table["N"] == size].sort_values(x)
        if seeds > 1:
            mean = rows.groupby("step")[[x, "L"]].mean().sort_values(x)
            sd = rows.groupby("step")["L"].std(ddof=1).reindex(mean.index).fillna(0.0)
            ax.fill_between(mean[x], mean["L"] - sd, mean["L"] + sd, color=color, alpha=0.2, lw=0)
            rows = mean
        ax.scatter(rows[x], rows["L"], s=12, color=color, label=f"N = {size_label(size)}")
        if law is not None and np.isclose(law.sizes_, float(size), rtol=1e-9).any():
            grid = np.geomspace(rows[x].min(), rows[x].max(), 60)
            pred = law.predict(float(size), grid, "confidence")["L"]
            ax.plot(grid, pred, style, color=color, lw=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel({"C": "compute C (FLOPs, 6·N·tokens)", "D": "data D (prompts seen)"}.get(x, x))
    ax.set_ylabel("test loss L = 1 − pass@1")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.25)
    return Figure(f"L against {x} per size", _svg(fig), caption)


def _seeds_per_size(table: pd.DataFrame) -> int:
    """The most runs any size has (seeds), when the table says which run a point is from."""
    if "run" not in table or "step" not in table:
        return 1
    return int(table.groupby("N")["run"].nunique().max())


def _describe(fit: dict[str, Any], x: str) -> str:
    r2 = fit.get("r2")
    return f"the {fit.get('law')} law fitted on {x} (R² {'—' if r2 is None else f'{r2:.4f}'})"


def k_of_size(per_size: dict[str, Any] | None, paper: dict[str, Any] | None) -> Figure | None:
    """k per size (free fit, 95% bars) with the paper's k(N) = Kmax/(1 + N0/N), its 95% band
    and the sizes where it reaches 50% and 90% of Kmax."""
    if not per_size or not per_size.get("per_N"):
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sizes = _k_points(ax, per_size, "k", "k per size")
    law, note = _fit_state(paper)
    if law is not None and paper is not None:
        grid = np.geomspace(sizes.min() / 3, sizes.max() * 3, 120)
        _k_curve(ax, paper, grid, "C0", "k(N) = Kmax/(1 + N0/N)")
        n0 = paper["params"]["N0"]
        for frac, style in ((0.5, "--"), (0.9, ":")):
            at = n0 * frac / (1 - frac)
            if grid[0] <= at <= grid[-1]:
                ax.axvline(at, color="C3", ls=style, lw=1, label=f"{frac:.0%} of Kmax")
    _k_axes(ax)
    return Figure("k(N): the learning-efficiency slope per size", _svg(fig), note)


def family_k_of_size(
    family_fits: dict[str, dict[str, dict[str, Any]]], shared: dict[str, Any] | None = None
) -> Figure | None:
    """Every family's k per size (free fits, 95% bars) and its paper-law k(N) with its 95%
    band, on one figure, with the joint fit's one k(N) for all (`shared`) when it was made."""
    drawn = {
        f: fits for f, fits in family_fits.items() if (fits.get("loglinear-C") or {}).get("per_N")
    }
    if not drawn:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    notes = []
    every = np.concatenate([_sizes(fits["loglinear-C"]) for fits in drawn.values()])
    grid = np.geomspace(every.min() / 3, every.max() * 3, 120)
    for i, (family, fits) in enumerate(drawn.items()):
        color = f"C{i}"
        _k_points(ax, fits["loglinear-C"], color, f"{family}: k per size", shift=1.06**i)
        law, note = _fit_state(fits.get("paper-C"))
        if law is not None:
            _k_curve(ax, fits["paper-C"], grid, color, f"{family}: k(N)")
        else:
            notes.append(f"{family}: paper law {note}")
    if shared and shared.get("converged"):
        kmax, n0 = shared["params"]["Kmax"], shared["params"]["N0"]
        ax.plot(grid, k_of_N(grid, kmax, n0), "k--", lw=1, label="one k(N) for all (joint fit)")
    _k_axes(ax)
    caption = "Bars: 95% intervals of each size's free k; lines: each family's paper-law k(N) "
    caption += "with its 95% band (points of a family shifted slightly right to stay apart)"
    caption += "; dashed: the joint fit's one k(N) for every family." if shared else "."
    return Figure("k(N) of each model family", _svg(fig), " ".join([caption, *notes]))


def _sizes(per_size: dict[str, Any]) -> np.ndarray:
    return np.array(sorted(float(n) for n in per_size["per_N"]))


def _k_points(
    ax: Any, per_size: dict[str, Any], color: Any, label: str, shift: float = 1.0
) -> np.ndarray:
    """A free fit's k per size, with 95% bars where it has intervals; returns the sizes."""
    sizes = _sizes(per_size)
    ks = np.array([per_size["per_N"][_key(per_size, n)]["k"] for n in sizes])
    ci = per_size.get("per_N_ci95") or {}
    bars = [ci.get(_key(per_size, n), {}).get("k") for n in sizes]
    if all(b is not None for b in bars):
        low = ks - np.array([b[0] for b in bars])
        high = np.array([b[1] for b in bars]) - ks
        ax.errorbar(
            sizes * shift, ks, yerr=[low, high], fmt="o", color=color, label=f"{label} (95%)"
        )
    else:
        ax.plot(sizes * shift, ks, "o", color=color, label=label)
    return sizes


def _k_curve(ax: Any, paper: dict[str, Any], grid: np.ndarray, color: str, label: str) -> None:
    kmax, n0 = paper["params"]["Kmax"], paper["params"]["N0"]
    ax.plot(grid, k_of_N(grid, kmax, n0), color=color, label=label)
    band = _k_band(paper, grid)
    if band is not None:
        ax.fill_between(grid, band[0], band[1], color=color, alpha=0.2, label="95% band")


def _k_axes(ax: Any) -> None:
    ax.set_xscale("log")
    ax.set_xlabel("model size N (non-embedding parameters)")
    ax.set_ylabel("k (log–log slope of L in compute)")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.25)


def _key(fit: dict[str, Any], N: float) -> str:
    for key in fit["per_N"]:
        if math.isclose(float(key), N, rel_tol=1e-9):
            return str(key)
    return str(N)


def _k_band(paper: dict[str, Any], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Delta-method 95% band of k(N) from the covariance of (Kmax, N0)."""
    cov = paper.get("covariance") or {}
    names = list(cov.get("names") or [])
    if not {"Kmax", "N0"} <= set(names):
        return None
    m = np.asarray(cov["matrix"], float)
    idx = [names.index("Kmax"), names.index("N0")]
    sub = m[np.ix_(idx, idx)]
    kmax, n0 = paper["params"]["Kmax"], paper["params"]["N0"]
    k = k_of_N(grid, kmax, n0)
    # d k / d(log Kmax) = k; d k / d(log N0) = −k·N0/(N + N0); linear parameters are per unit.
    d_kmax = k if cov["log_scale"][idx[0]] else k / kmax
    d_n0 = -k * n0 / (grid + n0) * (1.0 if cov["log_scale"][idx[1]] else 1.0 / n0)
    grad = np.stack([d_kmax, d_n0], axis=1)
    sd = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", grad, sub, grad), 0, None))
    if not np.all(np.isfinite(sd)):
        return None
    return k - Z95 * sd, k + Z95 * sd


def reuse_curves(reuse: dict[str, Any]) -> Figure | None:
    """L against step for each reuse factor τ (the data-constrained experiment)."""
    if not reuse:
        return None
    plt = _plt()
    taus = sorted(reuse, key=int)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for color, tau in zip(_colors(len(taus)), taus, strict=True):
        r = reuse[tau]
        ax.plot(
            r["step"],
            r["L"],
            "o-",
            ms=3,
            color=color,
            label=f"τ = {tau} ({r['unique_prompts']} unique)",
        )
        if r.get("L_sd") and r.get("seeds", 1) > 1:
            lo = np.subtract(r["L"], r["L_sd"])
            hi = np.add(r["L"], r["L_sd"])
            ax.fill_between(r["step"], lo, hi, color=color, alpha=0.2, lw=0)
    ax.set_xlabel("step")
    ax.set_ylabel("test loss L")
    ax.legend(fontsize=7)
    ax.grid(True, alpha=0.25)
    seeds = max(int(r.get("seeds", 1)) for r in reuse.values())
    band = f" Mean of {seeds} seeds; shaded: ± 1 SD across seeds." if seeds > 1 else ""
    return Figure(
        "Data reuse: L against step per τ", _svg(fig), f"Equal steps = equal prompts seen.{band}"
    )


def run_metrics(records: pd.DataFrame) -> Figure | None:
    """Per run: mean reward and KL against step, response length against D."""
    needed = {"run", "step", "reward_mean"}
    if records.empty or not needed <= set(records.columns):
        return None
    plt = _plt()
    rows = records[records["step"] > 0]
    runs = list(dict.fromkeys(rows["run"]))
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for color, run in zip(_colors(len(runs)), runs, strict=True):
        r = rows[rows["run"] == run].sort_values("step")
        axes[0].plot(r["step"], r["reward_mean"], color=color, lw=1, label=run)
        if "kl" in r and r["kl"].notna().any():
            axes[1].plot(r["step"], r["kl"], color=color, lw=1)
        if "response_len_mean" in r and "prompts_seen" in r:
            axes[2].plot(r["prompts_seen"], r["response_len_mean"], color=color, lw=1)
    for ax, (xl, yl) in zip(
        axes,
        (
            ("step", "mean reward"),
            ("step", "KL to the reference"),
            ("D (prompts seen)", "mean response tokens"),
        ),
        strict=True,
    ):
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.grid(True, alpha=0.25)
    axes[0].legend(fontsize=6)
    return Figure("Reward, KL and response length per run", _svg(fig))


def holdout_forecast(result: dict[str, Any]) -> Figure | None:
    """The held-out largest size: forecast with its 95% band against the measured points."""
    if not result or "held_out" not in result:
        return None
    title = f"Forecast of the held-out size N = {size_label(result['held_out'])}"
    if not result.get("ok"):
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6.4, 1.2))
        ax.axis("off")
        ax.text(0.01, 0.5, "no forecast: the fit did not converge", va="center")
        return Figure(title, _svg(fig), f"{result.get('law')} fit: {result.get('message')}")
    figure = _forecast_figure(title, [result], result["x"], f"{result['law']} fitted on the others")
    if result.get("profile"):
        figure = Figure(figure.title, figure.svg, f"{figure.caption} The law: {result['profile']}.")
    return figure


def prefix_forecasts(results: list[dict[str, Any]], x: str = "C") -> Figure | None:
    """Each run's remainder forecast from its first points (log–log fit), band and truth."""
    if not results:
        return None
    return _forecast_figure("Forecast of each run's remainder from its start", results, x, "prefix")


def _forecast_figure(title: str, results: list[dict[str, Any]], x: str, label: str) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for color, r in zip(_colors(len(results)), results, strict=True):
        name = f"N = {size_label(r['N'][0] if isinstance(r['N'], list) else r['N'])}"
        if "prefix_X" in r:
            ax.scatter(r["prefix_X"], r["prefix_L"], s=14, color=color, marker="s")
        ax.fill_between(r["X"], r["lo"], r["hi"], color=color, alpha=0.2)
        ax.plot(r["X"], r["L"], "--", color=color, lw=1.2)
        ax.scatter(r["X"], r["truth"], s=12, color=color, label=f"{name}: MAE {r['mae']:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    clipped = _frame_points(ax, results)
    ax.set_xlabel({"C": "compute C (FLOPs)", "D": "data D (prompts seen)"}.get(x, x))
    ax.set_ylabel("test loss L")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.25)
    caption = f"Dashed: forecast ({label}); shaded: 95% prediction band; dots: measured" + (
        "; squares: the points fitted." if label == "prefix" else "."
    )
    if clipped:
        caption += " The band runs past the plot where it is cut off."
    return Figure(title, _svg(fig), caption)


def _frame_points(ax: Any, results: list[dict[str, Any]]) -> bool:
    """Frame the L axis on the measured points and forecasts (a factor 3 either side), not on a
    band that may span decades; True when some band is cut off."""
    values = [v for r in results for k in ("truth", "L", "prefix_L") for v in r.get(k) or []]
    values = [v for v in values if v > 0]
    if not values:
        return False
    lo, hi = min(values) / 3, max(values) * 3
    bands = [v for r in results for v in r["lo"] + r["hi"] if v > 0]
    everything = values + bands
    ax.set_ylim(max(lo, min(everything)), min(hi, max(everything)))
    return any(v < lo or v > hi for v in bands)


def best_size(fit: dict[str, Any] | None, budgets: np.ndarray) -> Figure | None:
    """The size `plan` picks at each compute budget, with its predicted L."""
    from rlscale.plan import plan

    law, _ = _fit_state(fit)
    if law is None or fit is None or fit.get("x") != "C":
        return None
    picks = [plan(law, float(b)) for b in budgets]
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.step(budgets, [p.best_N for p in picks], where="mid", color="C0", label="best size")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("compute budget C (FLOPs)")
    ax.set_ylabel("best N among the fitted sizes")
    twin = ax.twinx()
    best_L = [min(c.L for c in p.candidates) for p in picks]
    twin.plot(budgets, best_L, ":", color="C3", label="its predicted L")
    twin.set_ylabel("predicted L at the best size")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(loc="upper left", fontsize=7)
    twin.legend(loc="upper right", fontsize=7)
    return Figure(
        "Best size for a compute budget (plan)", _svg(fig), f"From {_describe(fit, 'C')}."
    )
