from __future__ import annotations

import math

import numpy as np
import pytest

from rlscale.fit.laws import LAWS, LN10, Curves, ParamSpec, get_law, k_of_N, size_param
from rlscale.fit.solver import Objective, Problem

SIZES = np.array([1e8, 1e9, 1e10])
STEPS = np.arange(1, 21, dtype=float)
X_MAX = STEPS[-1] * 1e15 * SIZES / 1e9  # the largest X of each size on the grid


def grid_curves() -> Curves:
    N = np.repeat(SIZES, STEPS.size)
    X = np.tile(STEPS, SIZES.size) * 1e15 * N / 1e9
    return Curves.from_arrays(N, X)


TRUE = {
    "paper": {"Kmax": 0.12, "N0": 3e9, "E@0": 0.1, "E@1": 0.4, "E@2": 0.9},
    "paper_e_sat": {"Kmax": 0.12, "N0": 3e9, "Emax": 1.2, "N1": 2e9},
    "loglinear": {"k@0": 0.01, "E@0": 0.1, "k@1": 0.03, "E@1": 0.4, "k@2": 0.06, "E@2": 0.9},
    "expdecay": {
        **{size_param("b", i): 0.3 / X_MAX[i] for i in range(3)},
        **{size_param("E", i): -0.1 * i for i in range(3)},
    },
    "powerlaw_floor": {"E": 0.15, "A": 2e7, "B": 1e14, "alpha": 0.4, "beta": 0.3},
    "sigmoid": {
        **{size_param("R0", i): 0.1 * (i + 1) for i in range(3)},
        **{size_param("A", i): 0.5 + 0.1 * i for i in range(3)},
        **{size_param("Xmid", i): 1e16 * 10**i for i in range(3)},
        **{size_param("B", i): 1.0 + 0.5 * i for i in range(3)},
    },
}


def test_registry_names_and_unknown_law() -> None:
    assert set(LAWS) == {
        "paper",
        "loglinear",
        "expdecay",
        "paper_e_sat",
        "powerlaw_floor",
        "sigmoid",
    }
    with pytest.raises(ValueError, match="unknown law 'chinchilla'"):
        get_law("chinchilla")


def test_paper_k_of_N_by_hand() -> None:
    # k(N) = Kmax/(1 + N0/N): at N = N0 half of Kmax, at 9·N0 90%.
    assert k_of_N(np.array([13.78e9]), 0.13304, 13.78e9)[0] == pytest.approx(0.06652)
    assert k_of_N(np.array([9 * 13.78e9]), 0.13304, 13.78e9)[0] == pytest.approx(0.119736)


def test_paper_law_is_the_published_formula() -> None:
    c = Curves.from_arrays(np.array([7e9]), np.array([1e19]))
    p = {"Kmax": 0.13304, "N0": 13.78e9, "E@0": 0.704}
    k = 0.13304 / (1 + 13.78e9 / 7e9)
    log10_L = -k * 19 + 0.704
    assert get_law("paper").ln_L(p, c)[0] == pytest.approx(log10_L * LN10)


def test_expdecay_is_exponential_in_x() -> None:
    c = Curves.from_arrays(np.array([1e9, 1e9]), np.array([0.0, 2e12]))
    p = {"b@0": 1e-13, "E@0": -0.2}
    L = np.exp(get_law("expdecay").ln_L(p, c))
    np.testing.assert_allclose(L, [10**-0.2, 10 ** (-0.2 - 0.2)], rtol=1e-12)


def test_powerlaw_floor_log_sum_exp_equals_direct_sum() -> None:
    c = grid_curves()
    p = TRUE["powerlaw_floor"]
    direct = p["E"] + (p["A"] / c.N) ** p["alpha"] + (p["B"] / c.X) ** p["beta"]
    np.testing.assert_allclose(get_law("powerlaw_floor").ln_L(p, c), np.log(direct), rtol=1e-12)


def test_sigmoid_is_the_scalerl_formula() -> None:
    c = grid_curves()
    p = TRUE["sigmoid"]
    r0, a, xm, b = (
        np.array([p[size_param(n, i)] for i in range(3)])[c.g] for n in ("R0", "A", "Xmid", "B")
    )
    R = r0 + (a - r0) / (1 + (xm / c.X) ** b)
    np.testing.assert_allclose(np.exp(get_law("sigmoid").ln_L(p, c)), 1 - R, rtol=1e-10)


@pytest.mark.parametrize("name", sorted(TRUE))
@pytest.mark.parametrize("space", ["log", "linear"])
def test_separable_form_reproduces_the_law_at_the_true_parameters(name: str, space: str) -> None:
    """offset + Φβ at the true θ, with β solved in closed form, is the law's own prediction."""
    law, c, p = get_law(name), grid_curves(), TRUE[name]
    objective = Objective(space)  # type: ignore[arg-type]
    y = objective.predict(law.ln_L(p, c))
    problem = Problem(law, c, y, np.ones(c.n), objective, {})
    u = np.array([s.to_internal(p[s.name]) for s in problem.theta_specs])
    r, params = problem.profile(u)
    assert np.max(np.abs(r)) < 1e-9
    for key, value in p.items():
        assert params[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_param_spec_validation_says_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="lower bound"):
        ParamSpec("a", 1.0, 2.0, 1.0)
    with pytest.raises(ValueError, match="log-scale"):
        ParamSpec("a", 1.0, 0.0, 2.0, log_scale=True)
    spec = ParamSpec("N0", 1e9, 1e6, 1e12, log_scale=True)
    assert spec.from_internal(spec.to_internal(3e9)) == pytest.approx(3e9)
    assert spec.internal_bounds == pytest.approx((math.log(1e6), math.log(1e12)))


def test_powerlaw_floor_closed_form_gradient_matches_differences() -> None:
    import math

    from rlscale.fit.laws import Curves, get_law

    law = get_law("powerlaw_floor")
    c = Curves.from_arrays(np.array([1e8, 1e8, 7e9, 7e10]), np.array([1e17, 3e19, 1e20, 5e21]))
    p = {"E": 0.05, "A": 2e9, "B": 4e18, "alpha": 0.4, "beta": 0.3}
    gradient = law.ln_L_gradient(p, c)
    assert gradient is not None
    for name, log_scale in (
        ("E", True),
        ("A", True),
        ("B", True),
        ("alpha", False),
        ("beta", False),
    ):
        h = 1e-6
        up, down = dict(p), dict(p)
        if log_scale:
            up[name], down[name] = p[name] * math.exp(h), p[name] * math.exp(-h)
        else:
            up[name], down[name] = p[name] + h, p[name] - h
        numeric = (law.ln_L(up, c) - law.ln_L(down, c)) / (2 * h)
        np.testing.assert_allclose(gradient[name], numeric, rtol=1e-5, atol=1e-9, err_msg=name)
