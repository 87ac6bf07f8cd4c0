"""Studies with engine verl: the commands, τ parquet files and Slurm scripts (no GPU), verl's own
config check (when verl is installed), and launching through a stand-in entrypoint that writes
verl's file-logger log — as local processes with a crash and a resume, and as Ray jobs."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from rlscale.cli import app
from rlscale.data import Progress, load_problems
from rlscale.engines.verl import (
    RunFiles,
    command,
    sbatch_script,
    settings_for,
    verl_settings,
    write_run_data,
)
from rlscale.errors import InputError, RlscaleError
from rlscale.models.load import model_info
from rlscale.rl.trainer import training_sequence
from rlscale.runstore import run_dir, run_state
from rlscale.store import read_records
from rlscale.study import parse_study, preset_study
from rlscale.sweep import analyse_study, execute
from tests.conftest import free_port, local_ray_head

MODEL = Path(__file__).parents[2] / "src/rlscale/models/weights/micro-s"  # a local HF directory
FAKE = Path(__file__).parent / "fake_verl.py"
TRAIN = "synth:arith?split=train&n=200&seed=0"
HOLDOUT = "synth:arith?split=holdout&n=40&seed=0"
STEPS, BATCH, GROUP = 4, 8, 4


def study(**changes: Any) -> dict[str, Any]:
    mapping = {
        "name": "mini-verl",
        "engine": "verl",
        "preset": "paper",
        "models": [str(MODEL)],
        "train": TRAIN,
        "holdout": HOLDOUT,
        "evals": {"extra": "synth:arith?split=holdout&n=20&seed=1"},
        "budget": {"steps": STEPS},
        "grpo": {
            "prompts_per_step": BATCH, "group_size": GROUP, "mini_batches": 2,
            "max_new_tokens": 64, "eval_every": 2, "checkpoint_every": 2, "eval_problems": 16,
        },
        "reuse": {"taus": [2], "model": str(MODEL)},
        "verl": {"entrypoint": [sys.executable, str(FAKE)], "gpus_per_node": 2},
    }  # fmt: skip
    return mapping | changes


def overrides(argv: list[str]) -> dict[str, str]:
    return dict(a.split("=", 1) for a in argv if "=" in a)


def test_commands_parquet_files_and_sbatch_scripts(tmp_path: Path) -> None:
    spec_file = tmp_path / "mini.yaml"
    per_model = {"models": {str(MODEL): {"nodes": 2}}}  # one model's runs on two nodes
    spec_file.write_text(
        yaml.safe_dump(study(verl={"gpus_per_node": 4, "sbatch": ["-p gpu"]} | per_model))
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["verl", "commands", str(spec_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("mkdir -p")]
    assert len(lines) == 2 and all("python3 -m verl.trainer.main_ppo" in line for line in lines)
    for line in lines:
        subprocess.run(["bash", "-n", "-c", line], check=True)  # a valid shell line
    result = CliRunner().invoke(
        app, ["verl", "commands", str(spec_file), "--out", str(out), "--json", "-"]
    )
    rows = json.loads(result.output)
    spec = parse_study(study())
    for row, run in zip(rows, spec.runs(), strict=True):
        o = overrides(row["argv"])
        folder = run_dir(out, run).resolve()
        assert row["argv"][:3] == ["python3", "-m", "verl.trainer.main_ppo"]
        assert o["algorithm.adv_estimator"] == "grpo" and o["data.shuffle"] == "false"
        assert o["data.train_batch_size"] == str(BATCH) and o["actor_rollout_ref.rollout.n"] == "4"
        assert o["actor_rollout_ref.actor.ppo_mini_batch_size"] == str(BATCH // 2)
        assert o["actor_rollout_ref.actor.kl_loss_type"] == "low_var_kl"
        assert o["actor_rollout_ref.actor.kl_loss_coef"] == "0.001"
        assert o["actor_rollout_ref.rollout.val_kwargs.temperature"] == "0.7"
        assert o["trainer.total_training_steps"] == str(STEPS) and o["trainer.test_freq"] == "2"
        assert o["trainer.resume_mode"] == "auto" and o["trainer.logger"] == "[console,file]"
        assert o["trainer.experiment_name"] == run.name and o["trainer.n_gpus_per_node"] == "4"
        assert o["trainer.nnodes"] == "2"
        assert o["data.train_files"] == f"[{folder / 'train.parquet'}]"
        assert row["env"]["VERL_FILE_LOGGER_PATH"].startswith(str(folder / "verl-logs"))
        check_run_files(run, folder)
    assert len({overrides(r["argv"])["trainer.experiment_name"] for r in rows}) == 2

    scripts = tmp_path / "sbatch"
    args = ["study", "run", str(spec_file), "--out", str(out), "--emit", "sbatch", str(scripts)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    spaced = tmp_path / "a study; folder"
    elsewhere = tmp_path / "sbatch-2"
    args = [
        "study",
        "run",
        str(spec_file),
        "--out",
        str(spaced),
        "--emit",
        "sbatch",
        str(elsewhere),
    ]
    hint = CliRunner().invoke(app, args).output.split("then `")[1].split("`")[0]
    assert shlex.split(hint) == ["rlscale", "study", "fit", str(spaced)]
    for row, run in zip(rows, spec.runs(), strict=True):
        text = (scripts / f"{run.name}.sbatch").read_text()
        assert "#SBATCH --gpus-per-node=4" in text and "#SBATCH -p gpu" in text
        assert "#SBATCH --nodes=2" in text and 'export RAY_ADDRESS="$head_ip:6379"' in text
        subprocess.run(["bash", "-n", str(scripts / f"{run.name}.sbatch")], check=True)
        body = text[text.index("python3 -m") :].replace("\\\n", " ")
        assert shlex.split(body) == row["argv"]
    assert all(run_state(run_dir(out, r)) == "pending" for r in spec.runs())


def check_run_files(run: Any, folder: Path) -> None:
    """The run's training file is exactly the native engine's order (τ pool repeated), the
    holdout is its eval subset, in verl's schema; the reward shim scores with rlscale's verifier."""
    train = pd.read_parquet(folder / "train.parquet")
    native = training_sequence(load_problems(TRAIN), run.grpo)
    assert len(train) == STEPS * BATCH
    assert [e["id"] for e in train["extra_info"]] == [p.id for p in native]
    assert train["extra_info"].map(lambda e: e["id"]).nunique() == STEPS * BATCH // run.tau
    first = train.iloc[0]
    assert list(first["prompt"]) == [{"role": "user", "content": native[0].prompt}]
    assert first["reward_model"]["ground_truth"] == native[0].answer
    holdout = pd.read_parquet(folder / "holdout.parquet")
    assert len(holdout) == 16 and set(holdout["data_source"]) == {"holdout"}
    shim = importlib.util.spec_from_file_location("reward_shim", folder / "reward.py")
    assert shim is not None and shim.loader is not None
    module = importlib.util.module_from_spec(shim)
    shim.loader.exec_module(module)
    gold = native[0].answer
    assert module.compute_score("train", f"so \\boxed{{{gold}}}", gold) == 1.0
    assert module.compute_score("train", "so \\boxed{not it}", gold) == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": [str(MODEL), "micro-l"]}, "trains on the native engine"),
        ({"models": [str(MODEL), "Qwen/Qwen2.5-7B"]}, "sizes: Qwen/Qwen2.5-7B"),
        ({"preset": "micro"}, "grpo.drop_uniform_groups"),
        ({"budget": {"compute": 1e12, "steps": 4}}, "budget.compute"),
        ({"train": None}, "training and held-out data"),
        ({"verl": {"nodes": 0}}, "verl.nodes"),
        ({"evals": {"holdout": HOLDOUT}}, "evals: holdout names verl's own"),
        ({"verl": {"models": {str(MODEL): {"gpus_per_node": 0}}}}, "verl.models.*gpus_per_node"),
        ({"verl": {"models": {"other/model": {"nodes": 2}}}}, "other/model is not one of"),
        ({"verl": {"env": {"X;touch /tmp/pwned;Y": "v"}}}, r"verl.env: 'X;touch"),
        ({"verl": {"env": {"1X": "v"}}}, "not an environment variable name"),
        ({"verl": {"sbatch": ["--time=1:00\ntouch /tmp/pwned"]}}, "must be one line"),
    ],
)
def test_verl_studies_refuse_what_verl_cannot_run(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_study(study(**change))


def test_env_values_are_quoted_and_names_checked_in_every_generated_line(tmp_path: Path) -> None:
    from rlscale.engines.verl import shell_assignment
    from rlscale.engines.verl_launch import printed_command, write_run_inputs

    value = "a b;touch /tmp/pwned"
    spec = parse_study(study(verl=study()["verl"] | {"env": {"MY_VAR": value}}))
    run, files = write_run_inputs(spec, tmp_path)[0]
    line = printed_command(spec, run, files)
    assert f"MY_VAR={shlex.quote(value)}" in line
    script = sbatch_script(run, settings_for(spec, run), files)
    assert f"export MY_VAR={shlex.quote(value)}" in script
    with pytest.raises(InputError, match="not an environment variable name"):
        shell_assignment("X;touch /tmp/pwned;Y", "v")


def test_paper_preset_is_the_papers_protocol() -> None:
    spec = parse_study(preset_study("paper") | {"train": TRAIN, "holdout": HOLDOUT})
    runs = spec.runs()
    main = [r for r in runs if r.grpo.steps == 105]
    for family in ("base", "instruct"):  # the paper's two families, the same sizes in each
        sizes = [spec.sizes[r.model] for r in main if r.family == family]
        assert sizes == sorted(set(spec.sizes.values())) and len(sizes) == 7
    assert all(r.model.endswith("-Instruct") == (r.family == "instruct") for r in main)
    assert {r.family for r in runs if r.grpo.steps == 100} == {"base"}
    assert len(main) == 14 and sorted(r.tau for r in runs if r.grpo.steps == 100) == [
        1, 2, 5, 20, 25, 50, 100
    ]  # fmt: skip
    o = overrides(command(main[0], verl_settings(spec), RunFiles(Path("/x"))))
    assert o["data.train_batch_size"] == "512" and o["actor_rollout_ref.rollout.n"] == "8"
    assert o["actor_rollout_ref.actor.optim.lr"] == "1e-06"
    assert o["actor_rollout_ref.actor.ppo_mini_batch_size"] == "128"
    assert o["data.max_response_length"] == "4096" and o["trainer.test_freq"] == "1"
    assert o["actor_rollout_ref.actor.clip_ratio_high"] == "0.2"


def ingested_tokens(folder: Path) -> float:
    """Σ perf/total_num_tokens over the steps, the last attempt winning (what C must hold)."""
    by_step: dict[int, float] = {}
    for log in sorted((folder / "verl-logs").glob("*.jsonl")):
        for line in log.read_text().splitlines():
            item = json.loads(line)
            if "perf/total_num_tokens" in item["data"]:
                by_step[item["step"]] = item["data"]["perf/total_num_tokens"]
    return sum(by_step.values())


def test_local_verl_runs_crash_resume_and_fit_like_native_runs(tmp_path: Path) -> None:
    spec = parse_study(study(verl=study()["verl"] | {"env": {"FAKE_VERL_CRASH_AT": "3"}}))
    out = tmp_path / "out"
    first = execute(spec, out, "local")
    assert [o.state for o in first] == ["failed", "failed"]
    for run in spec.runs():
        assert [r["step"] for r in read_records(run_dir(out, run) / "steps.jsonl")] == [0, 1, 2, 3]
    second = execute(spec, out, "local")  # resumes from the step-2 checkpoint
    assert [o.state for o in second] == ["done", "done"], [o.error for o in second]
    n = model_info(str(MODEL))["N"]
    for run in spec.runs():
        folder = run_dir(out, run)
        records = read_records(folder / "steps.jsonl")
        assert [r["step"] for r in records] == list(range(STEPS + 1))
        assert len(list((folder / "verl-logs").glob("*.jsonl"))) == 2
        assert records[-1]["flops_paper_cum"] == pytest.approx(6 * n * ingested_tokens(folder))
        assert records[-1]["prompts_seen"] == STEPS * BATCH and records[-1]["tau"] == run.tau
        assert [r["eval_L"] is not None for r in records] == [True, False, True, False, True]
        assert records[-1]["eval_L@extra"] == pytest.approx(records[-1]["eval_L"] + 0.05)
        # the data columns mean what the native engine's do: cumulative distinct prompts, passes
        native = Progress([p.id for p in training_sequence(load_problems(TRAIN), run.grpo)])
        for r in records:
            want = native.columns(int(r["prompts_seen"]))
            assert (r["unique_prompts"], r["epoch"]) == (want["unique_prompts"], want["epoch"])
        assert records[0]["unique_prompts"] == 0 and records[-1]["epoch"] > 0
    result = analyse_study(spec, out)
    assert (out / "report.html").exists() and (out / "fits" / "loglinear-C.json").exists()
    assert {r["state"] for r in result["runs"]} == {"done"}  # type: ignore[index, union-attr]
    assert [o.seconds for o in execute(spec, out, "local")] == [0.0, 0.0]


@pytest.fixture()
def ray_dashboard() -> Iterator[str]:
    with local_ray_head(dashboard=True) as (_, url):
        yield url


@pytest.mark.slow
def test_ray_job_submission_runs_a_two_run_verl_study(tmp_path: Path, ray_dashboard: str) -> None:
    spec = parse_study(study(executor="ray"))
    out = tmp_path / "out"
    changes: list[tuple[str, str]] = []
    outcomes = execute(
        spec, out, "ray", address=ray_dashboard, on_change=lambda r, s: changes.append((r, s))
    )
    assert [o.state for o in outcomes] == ["done", "done"], [o.error for o in outcomes]
    for run in spec.runs():
        folder = run_dir(out, run)
        job = json.loads((folder / "ray_job.json").read_text())
        assert job["submission_id"].startswith(run.name)
        records = read_records(folder / "steps.jsonl")
        assert [r["step"] for r in records] == list(range(STEPS + 1))
        assert records[-1]["flops_paper_cum"] > 0 and records[0]["eval_L"] is not None
    assert {s for _, s in changes} == {"partial", "done"}
    assert [o.seconds for o in execute(spec, out, "ray", address=ray_dashboard)] == [0.0, 0.0]


def test_an_unreachable_ray_dashboard_is_one_clear_error(tmp_path: Path) -> None:
    spec = parse_study(study(executor="ray"))
    port = free_port()  # nothing listens there
    with pytest.raises(RlscaleError, match="cannot reach Ray's job API"):
        execute(spec, tmp_path / "out", "ray", address=f"127.0.0.1:{port}")
    assert not (tmp_path / "out" / "runs").exists()  # nothing prepared, nothing lost


VERL = importlib.util.find_spec("verl") is not None


@pytest.mark.skipif(not VERL, reason="verl is not installed: pip install -e '.[verl]' to run it")
def test_generated_commands_pass_verls_own_config_check(tmp_path: Path) -> None:
    spec = parse_study(study(verl={"gpus_per_node": 4}))
    run = spec.runs()[1]
    argv = command(run, verl_settings(spec), RunFiles(tmp_path.resolve()))
    check = [sys.executable, "-m", "verl.trainer.main_ppo", "--cfg", "job", "--resolve"]
    done = subprocess.run(check + argv[3:], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    config = yaml.safe_load(done.stdout)
    assert config["data"]["train_batch_size"] == BATCH and config["data"]["shuffle"] is False
    assert config["actor_rollout_ref"]["rollout"]["n"] == GROUP
    assert config["actor_rollout_ref"]["actor"]["ppo_epochs"] == 1
    assert config["actor_rollout_ref"]["rollout"]["val_kwargs"]["temperature"] == 0.7
    assert config["reward"]["custom_reward_function"]["path"] == str(tmp_path / "reward.py")
    assert config["trainer"]["total_training_steps"] == STEPS
    assert config["trainer"]["resume_mode"] == "auto"
    bad = subprocess.run(check + argv[3:] + ["trainer.no_such_key=1"], capture_output=True)
    assert bad.returncode != 0  # the check does refuse what verl does not know


@pytest.mark.skipif(not VERL, reason="verl is not installed: pip install -e '.[verl]' to run it")
def test_verls_own_dataset_reads_the_run_files(tmp_path: Path) -> None:
    from omegaconf import OmegaConf
    from transformers import PreTrainedTokenizerFast
    from verl.utils.dataset.rl_dataset import RLHFDataset

    spec = parse_study(study())
    run = spec.runs()[1]
    files = write_run_data(run, tmp_path)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(MODEL)
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    config = OmegaConf.create({"max_prompt_length": 2048, "truncation": "error"})
    dataset = RLHFDataset(data_files=[str(files.train)], tokenizer=tokenizer, config=config)
    native = training_sequence(load_problems(TRAIN), run.grpo)
    assert len(dataset) == STEPS * BATCH
    assert [dataset[i]["extra_info"]["id"] for i in range(len(dataset))] == [p.id for p in native]
    assert dataset[0]["reward_model"]["ground_truth"] == native[0].answer


def test_the_readme_verl_study_is_a_valid_study() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("    engine: verl\n")
    block = readme[start : readme.index("\n\n", start)]
    mapping = yaml.safe_load("\n".join(line[4:] for line in block.splitlines()))
    spec = parse_study(mapping | {"train": TRAIN, "holdout": HOLDOUT})
    assert verl_settings(spec).for_model("Qwen/Qwen2.5-7B").nodes == 2
    assert verl_settings(spec).for_model("Qwen/Qwen2.5-0.5B").nodes == 1
    assert spec.sizes["Qwen/Qwen2.5-7B"] == 6.53e9 and len(spec.runs()) == 5
