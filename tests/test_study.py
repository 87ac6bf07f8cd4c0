"""StudySpec: validation naming the field path, run expansion, stable keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rlscale.errors import InputError
from rlscale.study import SEALED_HOLDOUT, load_study, paper_departures, parse_study, preset_study

BASE = {
    "name": "mini",
    "models": ["micro-xs", "micro-s"],
    "budget": {"steps": 20},
    "grpo": {"lr": 3e-5, "prompts_per_step": 16},
    "seeds": [0, 1],
    "reuse": {"taus": [1, 5, 25], "model": "micro-s"},
}


def test_runs_cover_models_seeds_and_reuse_on_one_size() -> None:
    spec = parse_study(BASE)
    runs = spec.runs()
    plain = [(r.model, r.seed, r.tau) for r in runs if r.tau == 1]
    assert sorted(plain) == sorted((m, s, 1) for m in BASE["models"] for s in (0, 1))
    assert sorted((r.model, r.seed, r.tau) for r in runs if r.tau > 1) == [
        ("micro-s", 0, 5), ("micro-s", 0, 25), ("micro-s", 1, 5), ("micro-s", 1, 25),
    ]  # fmt: skip
    assert all(r.grpo.steps == 20 and r.grpo.lr == 3e-5 for r in runs)
    assert {r.grpo.seed for r in runs} == {0, 1} and len({r.key for r in runs}) == len(runs)


def test_keys_change_with_the_result_and_nothing_else() -> None:
    a = {r.name: r.key for r in parse_study(BASE).runs()}
    reordered = dict(reversed(list(BASE.items()))) | {"executor": "ray", "name": "other"}
    assert {r.name: r.key for r in parse_study(reordered).runs()} == a
    more_steps = parse_study(BASE | {"budget": {"steps": 21}}).runs()
    assert not {r.key for r in more_steps} & set(a.values())
    lr = parse_study(BASE | {"grpo": {"lr": 1e-5, "prompts_per_step": 16}}).runs()
    assert not {r.key for r in lr} & set(a.values())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": []}, "models: list at least one"),
        ({"models": ["micro-s", 3]}, "models[1]: expected a name or path"),
        ({"budget": {"flops": 1e12}}, "budget: give `{steps: N}`"),
        ({"budget": {"compute": 1e12}}, "budget.steps: with a compute budget"),
        ({"budget": {"compute": "lots", "steps": 9}}, "budget.compute: expected FLOPs"),
        ({"device": "tpu"}, "device: 'tpu' is not one of cpu, cuda"),
        ({"budget": {"steps": 0}}, "budget.steps: must be >= 1"),
        ({"grpo": {"lr": "fast"}}, "grpo: lr: cannot use 'fast'"),
        ({"grpo": {"seed": 3}}, "grpo.seed: set it with budget, seeds or reuse.taus"),
        ({"seeds": [0, "one"]}, "seeds[1]: expected an integer"),
        ({"reuse": {"taus": [1, 0]}}, "reuse.taus[1]: must be >= 1"),
        ({"reuse": {"taus": [5], "model": "micro-l"}}, "reuse.model: 'micro-l' is not one of"),
        ({"executor": "slurm"}, "executor: 'slurm' is not one of local, ray"),
        ({"seeds": [0, 0]}, "the same run twice"),
        ({"modles": ["x"]}, "unknown field(s) modles"),
    ],
)
def test_errors_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_study(BASE | change)
    assert message in str(info.value)


def test_compute_budget_reaches_every_run_and_its_key() -> None:
    runs = parse_study(BASE | {"budget": {"compute": "2e12", "steps": 50}}).runs()
    assert all(r.grpo.max_flops == 2e12 and r.grpo.steps == 50 for r in runs)
    plain = {r.key for r in parse_study(BASE | {"budget": {"steps": 50}}).runs()}
    assert not plain & {r.key for r in runs}


def test_load_study_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text("models: [micro-xs]\nbudget: {steps: 5}\ngrpo: {group_size: 0}\n")
    with pytest.raises(InputError, match=r"study.yaml: grpo: group_size must be an integer >= 1"):
        load_study(path)
    path.write_text("models: [micro-xs]\nbudget: {steps: 5}\n")
    spec = load_study(path)
    assert spec.name == "study" and [r.model for r in spec.runs()] == ["micro-xs"]


def test_reuse_runs_with_their_own_step_count_include_tau_one() -> None:
    from rlscale.runstore import reuse_runs

    study = {
        "models": ["micro-xs", "micro-s"],
        "budget": {"steps": 6},
        "reuse": {"taus": [1, 3], "model": "micro-s", "steps": 4},
    }
    spec = parse_study(study)
    runs = [(r.model, r.tau, r.grpo.steps) for r in spec.runs()]
    assert runs == [("micro-xs", 1, 6), ("micro-s", 1, 6), ("micro-s", 1, 4), ("micro-s", 3, 4)]
    assert reuse_runs(spec) == [r.name for r in spec.runs()[2:]]
    same = parse_study(study | {"reuse": {"taus": [1, 3], "model": "micro-s"}})
    assert [(r.tau, r.grpo.steps) for r in same.runs()] == [(1, 6), (1, 6), (3, 6)]
    assert reuse_runs(same) == [same.runs()[1].name, same.runs()[2].name]


def test_micro_presets_measure_precisely_enough_to_test_a_curve_shape() -> None:
    """The whole ladder, ~100 steps, ≥ 12 evaluated points a run, and an evaluation whose
    sampling SE cannot exceed 0.01 (p(1 − p) ≤ 1/4 on every problem); micro-seeds is the same
    grid with three seeds."""
    from rlscale.models.ladder import LADDER

    spec = parse_study(preset_study("micro"))
    assert list(spec.models) == [r.name for r in LADDER]  # ≥ 5 sizes over ≥ 100×: test_models
    g = spec.grpo
    evaluated = range(g.eval_every, spec.steps + 1, g.eval_every)
    points = len(evaluated) + bool(spec.steps % g.eval_every)
    assert spec.steps >= 100 and points >= 12
    holdout = 512  # eval_problems 0: the rungs' whole holdout
    assert g.eval_problems == 0 and 0.5 / math.sqrt(holdout * (g.eval_samples - 1)) <= 0.01
    assert sorted(spec.taus) == [1, 5, 25] and spec.reuse_model == "micro-m"
    seeds = parse_study(preset_study("micro-seeds"))
    assert seeds.seeds == (0, 1, 2) and seeds.models == spec.models and seeds.grpo == spec.grpo


def test_paper_departures_name_each_setting_that_differs_with_both_values() -> None:
    spec = parse_study(preset_study("micro"))
    departures = paper_departures(spec)
    assert "prompts_per_step 32 (paper 512)" in departures
    assert "lr 5e-05 (paper 1e-06)" in departures
    assert any(d.startswith("reuse τ 1, 5, 25") for d in departures)
    data = {"train": "synth:chains?n=60000", "holdout": "synth:chains?split=holdout&n=500"}
    paper = parse_study(preset_study("paper") | data)
    assert not [d for d in paper_departures(paper) if d.split()[0] in ("lr", "group_size")]


def test_settings_that_do_not_change_results_do_not_change_a_runs_key() -> None:
    import dataclasses

    run = parse_study(preset_study("micro-quick")).runs()[0]
    other = dataclasses.replace(run, grpo=run.grpo.replace(verify_workers=7))
    assert other.key == run.key and other.name == run.name  # a study finds its runs again
    longer = dataclasses.replace(run, grpo=run.grpo.replace(steps=run.grpo.steps + 1))
    assert longer.key != run.key


# --- model families --------------------------------------------------------------------------

FAMILIES = {k: v for k, v in BASE.items() if k != "models"} | {
    "families": {"base": ["micro-xs", "micro-s"], "instruct": ["micro-xs-instruct"]},
    "reuse": {"taus": [1, 5], "family": "base", "model": "micro-s"},
}


def test_a_study_without_families_keeps_the_run_keys_it_had_before_families() -> None:
    before = preset_study("micro")  # as it was before the sealed holdout and shuffled reuse
    del before["holdout"]
    before["reuse"] = {"taus": [1, 5, 25], "model": "micro-m"}
    names = [r.name for r in parse_study(before).runs()]
    assert names == [  # recorded at c9d6149, before `families:` existed
        "micro-xs-seed0-tau1-c886375e",
        "micro-s-seed0-tau1-afe440cd",
        "micro-m-seed0-tau1-f743637f",
        "micro-l-seed0-tau1-b1153b13",
        "micro-xl-seed0-tau1-007e5c77",
        "micro-m-seed0-tau5-75dbbe9e",
        "micro-m-seed0-tau25-e67c1808",
    ]
    assert all(r.family is None for r in parse_study(BASE).runs())


def test_families_name_their_runs_and_are_part_of_the_key() -> None:
    spec = parse_study(FAMILIES)
    assert spec.models == ("micro-xs", "micro-s", "micro-xs-instruct")
    runs = spec.runs()
    assert {(r.family, r.model) for r in runs} == {
        ("base", "micro-xs"), ("base", "micro-s"), ("instruct", "micro-xs-instruct"),
    }  # fmt: skip
    assert all(r.name.startswith(f"{r.family}-{r.model}-seed") for r in runs)
    assert {(r.model, r.tau) for r in runs if r.tau > 1} == {("micro-s", 5)}
    renamed = FAMILIES | {
        "families": {"b": ["micro-xs", "micro-s"], "i": ["micro-xs-instruct"]},
        "reuse": {"taus": [1, 5], "family": "b", "model": "micro-s"},
    }
    other = {(r.model, r.seed, r.tau): r.key for r in parse_study(renamed).runs()}
    assert not set(other.values()) & {r.key for r in runs}
    unfamilied = parse_study(BASE).runs()
    assert not {r.key for r in unfamilied} & {r.key for r in runs}


@pytest.mark.parametrize(
    ("families", "message"),
    [
        ({"base": ["micro-xs"], "instruct": ["micro-xs"]}, "families.instruct[0]: 'micro-xs' is"),
        ({"base": ["micro-xs"], "instruct": []}, "families.instruct: list at least one"),
        ({"base": ["micro-xs"], "my family": ["micro-s"]}, "families: 'my family' is not a path"),
        ({"base": ["micro-xs"], "../x": ["micro-s"]}, "families: '../x' is not a path-safe"),
        ({"base": ["micro-xs", 3]}, "families.base[1]: expected a name or path"),
        (["micro-xs"], "families: a mapping of family name"),
        ({}, "families: a mapping of family name"),
    ],
)
def test_bad_families_are_errors_naming_the_field(families: object, message: str) -> None:
    with pytest.raises(InputError) as info:
        parse_study(FAMILIES | {"families": families, "reuse": {"taus": [1]}})
    assert message in str(info.value)


def test_reuse_names_its_family_and_a_model_of_it() -> None:
    with pytest.raises(InputError, match=r"reuse\.family: 'chat' is not one of the families"):
        parse_study(FAMILIES | {"reuse": {"taus": [5], "family": "chat"}})
    with pytest.raises(InputError, match=r"reuse\.model: 'micro-xs-instruct' is not one of family"):
        parse_study(
            FAMILIES | {"reuse": {"taus": [5], "family": "base", "model": "micro-xs-instruct"}}
        )
    with pytest.raises(InputError, match="either models: or families:"):
        parse_study(FAMILIES | {"models": ["micro-xs"]})


def test_the_families_preset_runs_every_rung_of_both_families_once() -> None:
    spec = parse_study(preset_study("micro-families"))
    runs = spec.runs()
    base = [r.model for r in runs if r.family == "base"]
    assert [r.model for r in runs if r.family == "instruct"] == [f"{m}-instruct" for m in base]
    assert len(base) == 5 and {(r.tau, r.seed, r.grpo.steps) for r in runs} == {(1, 0, 100)}


def test_a_family_run_tells_its_trainer_its_family() -> None:
    from rlscale.engines.native import train_args

    runs = parse_study(FAMILIES).runs()
    args = {r.family: train_args(r, Path("/x")) for r in runs}
    assert args["instruct"][args["instruct"].index("--family") + 1] == "instruct"
    assert "--family" not in train_args(parse_study(BASE).runs()[0], Path("/x"))


def test_a_shuffled_reuse_grid_has_its_own_tau_one_run_without_the_curriculum() -> None:
    from rlscale.runstore import reuse_runs

    spec = parse_study(preset_study("micro"))
    runs = spec.runs()
    assert [(r.model, r.tau, r.grpo.curriculum) for r in runs] == [
        *((m, 1, True) for m in spec.models),
        ("micro-m", 1, False), ("micro-m", 5, False), ("micro-m", 25, False),
    ]  # fmt: skip
    assert reuse_runs(spec) == [r.name for r in runs[5:]]
    assert len({r.key for r in runs}) == len(runs)  # its τ = 1 run is not the scaling one
    assert any("reuse runs shuffled" in d for d in paper_departures(spec))
    curriculum = parse_study(BASE)  # the paper's order: the scaling run is the grid's τ = 1
    assert reuse_runs(curriculum)[0] == curriculum.runs()[1].name
    with pytest.raises(InputError, match=r"reuse\.order: 'random' is not one of curriculum"):
        parse_study(BASE | {"reuse": {"taus": [1, 5], "model": "micro-s", "order": "random"}})


def test_the_micro_studies_are_judged_on_the_sealed_holdout_of_their_task() -> None:
    from rlscale.models.build import BuildConfig

    for name in ("micro", "micro-seeds", "micro-families"):
        spec = parse_study(preset_study(name))
        assert spec.holdout == SEALED_HOLDOUT and all(
            r.holdout == spec.holdout for r in spec.runs()
        )
    assert SEALED_HOLDOUT.startswith(f"synth:{BuildConfig().task}?split=sealed")
