"""Scaling laws as pure numpy functions with parameter specs, chosen by name from `LAWS`.

Every law predicts ln L (L = 1 − pass@1) from model size N and a resource X (compute C, data D or
steps). For the fit, a law also describes itself as a *separable* model in a given residual space:
for fixed nonlinear parameters θ the prediction is `offset(θ) + Φ(θ) β`, linear in β, so β is
solved in closed form (variable projection) and only θ is searched.

Per-size parameters are named `name@i`, i indexing `Curves.sizes` (sorted ascending).
Conventions: the `paper` family reports k and E in log10 (log10 L = −k log10 X + E).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar, Literal

import numpy as np

Space = Literal["log", "linear"]
LN10 = math.log(10.0)
TINY = 1e-300


@dataclass(frozen=True)
class ParamSpec:
    """A parameter as data: start value, bounds, log-scale search, fixed or free."""

    name: str
    value: float
    lower: float
    upper: float
    log_scale: bool = False
    fixed: bool = False

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ValueError(f"{self.name}: lower bound {self.lower} must be < upper {self.upper}")
        if self.log_scale and self.lower <= 0:
            raise ValueError(f"{self.name}: a log-scale parameter needs a lower bound > 0")
        if not self.lower <= self.value <= self.upper:
            raise ValueError(
                f"{self.name}: value {self.value} outside [{self.lower}, {self.upper}]"
            )

    def to_internal(self, value: float) -> float:
        return math.log(max(value, TINY)) if self.log_scale else value

    def from_internal(self, u: float) -> float:
        return math.exp(u) if self.log_scale else u

    @property
    def internal_bounds(self) -> tuple[float, float]:
        return self.to_internal(self.lower), self.to_internal(self.upper)


def size_param(name: str, i: int) -> str:
    return f"{name}@{i}"


def split_size_param(name: str) -> tuple[str, int | None]:
    base, sep, index = name.partition("@")
    return (base, int(index)) if sep else (base, None)


@dataclass(frozen=True)
class Curves:
    """Where a law is evaluated: size N and resource X of each point, and its group index g.

    A group is a model size (`sizes` sorted and distinct) — or, for a joint fit of several
    model families, a (family, size) pair: `sizes` then holds each group's N, repeated once per
    family, so a law's per-size parameters (the paper law's E) become per family and size
    while whatever it computes from N (k(N)) stays shared."""

    N: np.ndarray
    X: np.ndarray
    g: np.ndarray
    sizes: np.ndarray

    @classmethod
    def from_arrays(cls, N: np.ndarray, X: np.ndarray) -> Curves:
        N = np.asarray(N, dtype=float)
        sizes, g = np.unique(N, return_inverse=True)
        return cls(N=N, X=np.asarray(X, dtype=float), g=g.astype(np.int64), sizes=sizes)

    @classmethod
    def grouped(cls, N: np.ndarray, X: np.ndarray, group: np.ndarray) -> Curves:
        """Curves whose groups are given (e.g. family and size), numbered in order of their
        first appearance in `group`'s sorted distinct values; each group one size."""
        N = np.asarray(N, dtype=float)
        labels, g = np.unique(np.asarray(group), return_inverse=True)
        sizes = np.array([N[g == i][0] for i in range(labels.size)])
        if any(np.ptp(N[g == i]) > 0 for i in range(labels.size)):
            raise ValueError("every group of a grouped Curves must hold one model size")
        return cls(N=N, X=np.asarray(X, dtype=float), g=g.astype(np.int64), sizes=sizes)

    def take(self, idx: np.ndarray) -> Curves:
        """The points `idx`, groups renumbered over those still present (kept apart even when
        two share a size, as a joint fit's families do)."""
        present = np.unique(self.g[idx])
        g = np.searchsorted(present, self.g[idx]).astype(np.int64)
        return Curves(N=self.N[idx], X=self.X[idx], g=g, sizes=self.sizes[present])

    @property
    def n(self) -> int:
        return int(self.N.size)

    def onehot(self) -> np.ndarray:
        """(n, G) indicator of each point's size (cached: designs reuse it every evaluation)."""
        return self._onehot

    @property
    def G(self) -> int:
        return int(self.sizes.size)

    @cached_property
    def _onehot(self) -> np.ndarray:
        return np.asarray(self.g[:, None] == np.arange(self.G)[None, :], dtype=float)


@dataclass(frozen=True)
class Design:
    """Prediction in the residual space = offset + phi @ beta; `names` label the columns."""

    offset: np.ndarray
    phi: np.ndarray
    names: tuple[str, ...]
    nonneg: bool = False
    block: np.ndarray | None = None  # set when row i's only nonzero column is block[i]


def _no_columns(offset: np.ndarray) -> Design:
    return Design(offset=offset, phi=np.zeros((offset.size, 0)), names=())


class Law(ABC):
    """A scaling law: prediction, parameter specs and its separable form per space."""

    name: ClassVar[str]
    summary: ClassVar[str]
    global_names: ClassVar[tuple[str, ...]] = ()
    size_names: ClassVar[tuple[str, ...]]  # free per-size parameters
    report_names: ClassVar[tuple[str, ...]]  # reported per size in FitResult.per_N
    min_sizes: ClassVar[int] = 1
    separable: ClassVar[bool] = False  # each size is an independent fit
    forecasts_unseen: ClassVar[bool] = False  # defines the law at sizes it was not fitted on
    warm_space: ClassVar[Space] = "log"  # the space where the closed-form part is largest

    @abstractmethod
    def specs(self, c: Curves) -> tuple[ParamSpec, ...]:
        """All parameters (global first, then per-size), bounds adapted to the data."""

    @abstractmethod
    def searched(self, space: Space, c: Curves) -> tuple[str, ...]:
        """Names searched nonlinearly in `space`; the rest are the design's linear columns."""

    @abstractmethod
    def design(self, space: Space, c: Curves, theta: Mapping[str, float]) -> Design:
        """Separable form for fixed θ, in ln L (log space) or L (linear space)."""

    @abstractmethod
    def ln_L(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        """ln L at the points of `c`."""

    @abstractmethod
    def per_size(self, p: Mapping[str, float], c: Curves) -> list[dict[str, float]]:
        """Reported per-size values (e.g. k and E), one dict per entry of `c.sizes`."""

    def complete(
        self, space: Space, theta: Mapping[str, float], beta: Mapping[str, float]
    ) -> dict[str, float]:
        """Full parameter dict from searched θ and linear β (a law may re-parametrise β)."""
        return {**theta, **beta}

    def ln_L_unseen(self, p: Mapping[str, float], N: np.ndarray, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"law {self.name!r} does not define L at unseen sizes")

    def ln_L_gradient(self, p: Mapping[str, float], c: Curves) -> dict[str, np.ndarray] | None:
        """∂ ln L / ∂ each global parameter at the points of `c` — with respect to its log for a
        log-scale one — where the law gives it in closed form (else None: differences are used)."""
        return None


def _size_bounds(c: Curves) -> tuple[float, float, float]:
    lo, hi = float(c.sizes.min()), float(c.sizes.max())
    return lo / 1e3, math.sqrt(lo * hi), hi * 1e3


def _x_bounds(c: Curves, below: float, above: float) -> tuple[float, float, float]:
    lo, hi = float(c.X.min()), float(c.X.max())
    return lo / below, math.sqrt(lo * hi), hi * above


def saturation(N: np.ndarray, N0: float) -> np.ndarray:
    """N / (N + N0): the fraction of Kmax reached at size N."""
    return np.asarray(N / (N + N0))


def k_of_N(N: np.ndarray, Kmax: float, N0: float) -> np.ndarray:
    """The paper's k(N) = Kmax / (1 + N0/N)."""
    return np.asarray(Kmax * saturation(N, N0))


class _AmplitudeLaw(Law):
    """Laws whose linear-space fit solves amplitudes a = 10^E per size (L = a·X^−k)."""

    def complete(
        self, space: Space, theta: Mapping[str, float], beta: Mapping[str, float]
    ) -> dict[str, float]:
        return {**theta, **_amplitudes_to_log10(beta)}


class PaperLaw(_AmplitudeLaw):
    name = "paper"
    summary = (
        "log L = −k(N)·log X + E(N), k(N) = Kmax/(1 + N0/N), E free per size (log10); "
        "L an error rate (1 − pass@1) in the paper, any positive loss here"
    )
    global_names = ("Kmax", "N0")
    size_names = ("E",)
    report_names = ("k", "E")
    min_sizes = 2

    def specs(self, c: Curves) -> tuple[ParamSpec, ...]:
        lo, mid, hi = _size_bounds(c)
        glob = (
            ParamSpec("Kmax", 0.1, 1e-6, 10.0, log_scale=True),
            ParamSpec("N0", mid, lo, hi, log_scale=True),
        )
        return glob + tuple(ParamSpec(size_param("E", i), 0.0, -100, 100) for i in range(c.G))

    def searched(self, space: Space, c: Curves) -> tuple[str, ...]:
        return ("N0",) if space == "log" else ("Kmax", "N0")

    def design(self, space: Space, c: Curves, theta: Mapping[str, float]) -> Design:
        onehot = c.onehot()
        e_names = tuple(size_param("E", i) for i in range(c.G))
        if space == "log":
            slope = -saturation(c.N, theta["N0"]) * np.log(c.X)
            phi = np.column_stack([slope, LN10 * onehot])
            return Design(np.zeros(c.n), phi, ("Kmax", *e_names))
        k = k_of_N(c.N, theta["Kmax"], theta["N0"])
        a_names = tuple(size_param("a", i) for i in range(c.G))
        phi = onehot * np.exp(-k * np.log(c.X))[:, None]
        return Design(np.zeros(c.n), phi, a_names, block=c.g)

    def ln_L(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        E = np.array([p[size_param("E", i)] for i in range(c.G)])
        return np.asarray(-k_of_N(c.N, p["Kmax"], p["N0"]) * np.log(c.X) + LN10 * E[c.g])

    def per_size(self, p: Mapping[str, float], c: Curves) -> list[dict[str, float]]:
        k = k_of_N(c.sizes, p["Kmax"], p["N0"])
        return [{"k": float(k[i]), "E": p[size_param("E", i)]} for i in range(c.G)]


def _amplitudes_to_log10(beta: Mapping[str, float]) -> dict[str, float]:
    """Linear-space amplitudes a@i (L = a·X^−k) → E@i = log10 a (nan if a ≤ 0)."""
    out: dict[str, float] = {}
    for name, value in beta.items():
        base, i = split_size_param(name)
        if base == "a" and i is not None:
            out[size_param("E", i)] = math.log10(value) if value > 0 else math.nan
        else:
            out[name] = value
    return out


class PaperESatLaw(Law):
    name = "paper_e_sat"
    summary = (
        "paper law with E(N) = Emax·N/(N + N1) (log10), so unseen sizes can be forecast; any L > 0"
    )
    global_names = ("Kmax", "N0", "Emax", "N1")
    size_names = ()
    report_names = ("k", "E")
    min_sizes = 3
    forecasts_unseen = True

    def specs(self, c: Curves) -> tuple[ParamSpec, ...]:
        lo, mid, hi = _size_bounds(c)
        return (
            ParamSpec("Kmax", 0.1, 1e-6, 10.0, log_scale=True),
            ParamSpec("N0", mid, lo, hi, log_scale=True),
            ParamSpec("Emax", 0.0, -100.0, 100.0),
            ParamSpec("N1", mid, lo, hi, log_scale=True),
        )

    def searched(self, space: Space, c: Curves) -> tuple[str, ...]:
        return ("N0", "N1") if space == "log" else ("Kmax", "N0", "Emax", "N1")

    def design(self, space: Space, c: Curves, theta: Mapping[str, float]) -> Design:
        if space == "linear":
            return _no_columns(np.exp(self.ln_L(theta, c)))
        slope = -saturation(c.N, theta["N0"]) * np.log(c.X)
        e_col = LN10 * saturation(c.N, theta["N1"])
        return Design(np.zeros(c.n), np.column_stack([slope, e_col]), ("Kmax", "Emax"))

    def ln_L(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        return self.ln_L_unseen(p, c.N, c.X)

    def ln_L_unseen(self, p: Mapping[str, float], N: np.ndarray, X: np.ndarray) -> np.ndarray:
        E = p["Emax"] * saturation(N, p["N1"])
        return np.asarray(-k_of_N(N, p["Kmax"], p["N0"]) * np.log(X) + LN10 * E)

    def per_size(self, p: Mapping[str, float], c: Curves) -> list[dict[str, float]]:
        k = k_of_N(c.sizes, p["Kmax"], p["N0"])
        E = p["Emax"] * saturation(c.sizes, p["N1"])
        return [{"k": float(k[i]), "E": float(E[i])} for i in range(c.G)]


class LoglinearLaw(_AmplitudeLaw):
    name = "loglinear"
    summary = (
        "log L = −k·log X + E with k and E free per size (log10; the paper's diagnostic); any L > 0"
    )
    size_names = ("k", "E")
    report_names = ("k", "E")
    separable = True

    def specs(self, c: Curves) -> tuple[ParamSpec, ...]:
        out: list[ParamSpec] = []
        for i in range(c.G):
            out += [ParamSpec(size_param("k", i), 0.1, -2.0, 5.0)]
            out += [ParamSpec(size_param("E", i), 0.0, -100.0, 100.0)]
        return tuple(out)

    def searched(self, space: Space, c: Curves) -> tuple[str, ...]:
        return () if space == "log" else tuple(size_param("k", i) for i in range(c.G))

    def design(self, space: Space, c: Curves, theta: Mapping[str, float]) -> Design:
        onehot = c.onehot()
        if space == "log":
            phi = np.column_stack([-onehot * np.log(c.X)[:, None], LN10 * onehot])
            names = [size_param("k", i) for i in range(c.G)] + [
                size_param("E", i) for i in range(c.G)
            ]
            return Design(np.zeros(c.n), phi, tuple(names))
        k = np.array([theta[size_param("k", i)] for i in range(c.G)])
        a_names = tuple(size_param("a", i) for i in range(c.G))
        phi = onehot * np.exp(-k[c.g] * np.log(c.X))[:, None]
        return Design(np.zeros(c.n), phi, a_names, block=c.g)

    def ln_L(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        k = np.array([p[size_param("k", i)] for i in range(c.G)])
        E = np.array([p[size_param("E", i)] for i in range(c.G)])
        return np.asarray(-k[c.g] * np.log(c.X) + LN10 * E[c.g])

    def per_size(self, p: Mapping[str, float], c: Curves) -> list[dict[str, float]]:
        return [{n: p[size_param(n, i)] for n in ("k", "E")} for i in range(c.G)]


class ExpDecayLaw(_AmplitudeLaw):
    """The rival the micro-ladder prototypes preferred: loss decaying exponentially in X.

    Compared with `loglinear` it has the same two parameters per size, linear in X instead of
    log X, so per-size R² of the two says which shape the curves have.
    """

    name = "expdecay"
    summary = (
        "log L = −b·X + E with b and E free per size (log10; exponential decay in X); any L > 0"
    )
    size_names = ("b", "E")
    report_names = ("b", "E")
    separable = True

    def specs(self, c: Curves) -> tuple[ParamSpec, ...]:
        out: list[ParamSpec] = []
        for i in range(c.G):
            # b·max(X) is the decades of L lost over the data: bounded to a sane range.
            scale = 1.0 / float(c.X[c.g == i].max())
            out += [ParamSpec(size_param("b", i), scale, -10.0 * scale, 50.0 * scale)]
            out += [ParamSpec(size_param("E", i), 0.0, -100.0, 100.0)]
        return tuple(out)

    def searched(self, space: Space, c: Curves) -> tuple[str, ...]:
        return () if space == "log" else tuple(size_param("b", i) for i in range(c.G))

    def design(self, space: Space, c: Curves, theta: Mapping[str, float]) -> Design:
        onehot = c.onehot()
        if space == "log":
            phi = np.column_stack([-LN10 * onehot * c.X[:, None], LN10 * onehot])
            names = [size_param("b", i) for i in range(c.G)]
            names += [size_param("E", i) for i in range(c.G)]
            return Design(np.zeros(c.n), phi, tuple(names))
        b = np.array([theta[size_param("b", i)] for i in range(c.G)])
        a_names = tuple(size_param("a", i) for i in range(c.G))
        phi = onehot * np.exp(-LN10 * b[c.g] * c.X)[:, None]
        return Design(np.zeros(c.n), phi, a_names, block=c.g)

    def ln_L(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        b = np.array([p[size_param("b", i)] for i in range(c.G)])
        E = np.array([p[size_param("E", i)] for i in range(c.G)])
        return np.asarray(LN10 * (E[c.g] - b[c.g] * c.X))

    def per_size(self, p: Mapping[str, float], c: Curves) -> list[dict[str, float]]:
        return [{n: p[size_param(n, i)] for n in ("b", "E")} for i in range(c.G)]


class PowerlawFloorLaw(Law):
    name = "powerlaw_floor"
    summary = "L = E + (A/N)^alpha + (B/X)^beta, fitted in log-sum-exp form (Chinchilla form)"
    global_names = ("E", "A", "B", "alpha", "beta")
    size_names = ()
    report_names = ()
    min_sizes = 2
    forecasts_unseen = True
    warm_space = "linear"

    def specs(self, c: Curves) -> tuple[ParamSpec, ...]:
        n_lo, n_mid, n_hi = float(c.sizes.min()), float(c.sizes.min()), float(c.sizes.max())
        x_lo, x_mid, x_hi = _x_bounds(c, 1e12, 1e6)
        return (
            # E is any loss's floor: an error rate's is below 1, a cross-entropy's in nats above
            ParamSpec("E", 0.1, 1e-8, 1e3, log_scale=True),
            ParamSpec("A", n_mid, n_lo * 1e-6, n_hi * 1e6, log_scale=True),
            ParamSpec("B", x_mid, x_lo, x_hi, log_scale=True),
            ParamSpec("alpha", 0.5, 0.01, 3.0),
            ParamSpec("beta", 0.5, 0.01, 3.0),
        )

    def searched(self, space: Space, c: Curves) -> tuple[str, ...]:
        return ("alpha", "beta") if space == "linear" else ("E", "A", "B", "alpha", "beta")

    def design(self, space: Space, c: Curves, theta: Mapping[str, float]) -> Design:
        if space == "log":
            return _no_columns(self.ln_L(theta, c))
        phi = np.column_stack([np.ones(c.n), c.N ** -theta["alpha"], c.X ** -theta["beta"]])
        return Design(np.zeros(c.n), phi, ("E", "cA", "cB"), nonneg=True)

    def complete(
        self, space: Space, theta: Mapping[str, float], beta: Mapping[str, float]
    ) -> dict[str, float]:
        if space == "log":
            return dict(theta)
        # Coefficients cA = A^alpha, cB = B^beta; nnls may return 0 (term absent): kept tiny.
        return {
            **theta,
            "E": max(beta["E"], 1e-8),
            "A": max(max(beta["cA"], TINY) ** (1.0 / theta["alpha"]), TINY),
            "B": max(max(beta["cB"], TINY) ** (1.0 / theta["beta"]), TINY),
        }

    def ln_L(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        return self.ln_L_unseen(p, c.N, c.X)

    def ln_L_unseen(self, p: Mapping[str, float], N: np.ndarray, X: np.ndarray) -> np.ndarray:
        size_term = p["alpha"] * (math.log(p["A"]) - np.log(N))
        data_term = p["beta"] * (math.log(p["B"]) - np.log(X))
        floor = np.full_like(size_term, math.log(p["E"]))
        return np.asarray(np.logaddexp(np.logaddexp(size_term, data_term), floor))

    def per_size(self, p: Mapping[str, float], c: Curves) -> list[dict[str, float]]:
        return [{} for _ in range(c.G)]

    def ln_L_gradient(self, p: Mapping[str, float], c: Curves) -> dict[str, np.ndarray] | None:
        # ln L = logsumexp(a, b, e): each term's share of L times the term's own derivative
        log_n, log_x = np.log(c.N), np.log(c.X)
        a = p["alpha"] * (math.log(p["A"]) - log_n)
        b = p["beta"] * (math.log(p["B"]) - log_x)
        ln_L = np.logaddexp(np.logaddexp(a, b), math.log(p["E"]))
        w_a, w_b, w_e = np.exp(a - ln_L), np.exp(b - ln_L), np.exp(math.log(p["E"]) - ln_L)
        return {
            "E": w_e,
            "A": w_a * p["alpha"],
            "B": w_b * p["beta"],
            "alpha": w_a * (math.log(p["A"]) - log_n),
            "beta": w_b * (math.log(p["B"]) - log_x),
        }


class SigmoidLaw(Law):
    name = "sigmoid"
    summary = "ScaleRL: pass rate R = R0 + (A − R0)/(1 + (Xmid/X)^B), per size"
    size_names = ("R0", "A", "Xmid", "B")
    report_names = ("R0", "A", "Xmid", "B")
    separable = True
    warm_space = "linear"

    def specs(self, c: Curves) -> tuple[ParamSpec, ...]:
        x_lo, x_mid, x_hi = _x_bounds(c, 100.0, 100.0)
        out: list[ParamSpec] = []
        for i in range(c.G):
            out += [
                ParamSpec(size_param("R0", i), 0.0, 0.0, 1.0),
                ParamSpec(size_param("A", i), 0.5, 0.0, 1.0),
                ParamSpec(size_param("Xmid", i), x_mid, x_lo, x_hi, log_scale=True),
                ParamSpec(size_param("B", i), 1.0, 0.05, 20.0, log_scale=True),
            ]
        return tuple(out)

    def searched(self, space: Space, c: Curves) -> tuple[str, ...]:
        names = ("Xmid", "B") if space == "linear" else ("R0", "A", "Xmid", "B")
        return tuple(size_param(n, i) for i in range(c.G) for n in names)

    def design(self, space: Space, c: Curves, theta: Mapping[str, float]) -> Design:
        if space == "log":
            return _no_columns(self.ln_L(theta, c))
        s = self._rise(theta, c)
        onehot = c.onehot()
        phi = np.column_stack([-onehot * (1.0 - s)[:, None], -onehot * s[:, None]])
        names = [size_param("R0", i) for i in range(c.G)] + [size_param("A", i) for i in range(c.G)]
        return Design(np.ones(c.n), phi, tuple(names))

    def _rise(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        xmid = np.array([p[size_param("Xmid", i)] for i in range(c.G)])[c.g]
        b = np.array([p[size_param("B", i)] for i in range(c.G)])[c.g]
        # 1/(1 + (Xmid/X)^B) written as a logistic in log X, stable for any ratio.
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * b * (np.log(c.X) - np.log(xmid)))))

    def ln_L(self, p: Mapping[str, float], c: Curves) -> np.ndarray:
        r0 = np.array([p[size_param("R0", i)] for i in range(c.G)])[c.g]
        a = np.array([p[size_param("A", i)] for i in range(c.G)])[c.g]
        R = r0 + (a - r0) * self._rise(p, c)
        return np.asarray(np.log(np.clip(1.0 - R, TINY, None)))

    def per_size(self, p: Mapping[str, float], c: Curves) -> list[dict[str, float]]:
        return [{n: p[size_param(n, i)] for n in self.report_names} for i in range(c.G)]


LAWS: dict[str, Law] = {
    law.name: law
    for law in (
        PaperLaw(),
        LoglinearLaw(),
        ExpDecayLaw(),
        PaperESatLaw(),
        PowerlawFloorLaw(),
        SigmoidLaw(),
    )
}


def get_law(name: str) -> Law:
    try:
        return LAWS[name]
    except KeyError:
        raise ValueError(f"unknown law {name!r}; choose one of: {', '.join(LAWS)}") from None
