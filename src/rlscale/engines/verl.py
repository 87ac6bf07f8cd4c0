"""A study's runs on verl: each run's data files, its `verl.trainer.main_ppo` command (Hydra
overrides), its Slurm script, and its logs turned back into the run's `steps.jsonl`.

A verl run folder (`OUT/runs/<run>/`) holds `train.parquet` (the run's whole training sequence —
steps × prompts per step rows, the τ pool repeated in curriculum order — read once with
`data.shuffle=False`, so verl sees exactly the order the native engine would), `holdout.parquet`
and `eval-<name>.parquet` (verl's schema), `reward.py` (verl's custom reward → rlscale's
verifier), `grpo.json`, `command.json`, verl's checkpoints under `verl_ckpt/` and one file-logger
log per attempt under `verl-logs/` (verl's file logger truncates its file when a run restarts, so
every attempt writes its own; ingestion merges them, the last value of a step winning). When an
attempt ends, the logs become `steps.jsonl` (StepRecords) and, once every step is there,
`summary.json`.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlscale.data.order import Progress
from rlscale.errors import InputError

if TYPE_CHECKING:
    from rlscale.rl.config import GRPOConfig
    from rlscale.spec import RunSpec, StudySpec

ENTRYPOINT = ("python3", "-m", "verl.trainer.main_ppo")
LOG_DIR = "verl-logs"
HOLDOUT_SOURCE = "holdout"  # the holdout's data_source: L is its val-core/holdout/acc/mean@1
REWARD_SHIM = (
    '"""verl\'s custom reward for this run (written by rlscale): answers are checked by\n'
    'rlscale\'s verifier in killable, memory-capped worker processes."""\n\n'
    "from rlscale.engines.verl_reward import compute_score  # noqa: F401\n"
)
KNOWN = {"nodes", "gpus_per_node", "rollout", "tensor_parallel", "gpu_memory_utilization"}
KNOWN |= {"max_prompt_length", "entrypoint", "overrides", "env", "sbatch", "models"}
_PLAIN = re.compile(r"^[A-Za-z0-9_./@:+\-]+$")


@dataclass(frozen=True)
class VerlSettings:
    """The `verl:` section of a study: the cluster shape and verl-only knobs (not part of run
    keys: they change where and how fast a run trains, not what it computes)."""

    nodes: int = 1
    gpus_per_node: int = 8
    rollout: str = "vllm"
    tensor_parallel: int = 1
    gpu_memory_utilization: float = 0.6
    max_prompt_length: int = 2048
    entrypoint: tuple[str, ...] = ENTRYPOINT
    overrides: tuple[str, ...] = ()  # extra Hydra overrides, appended as given
    env: dict[str, str] = field(default_factory=dict)
    sbatch: tuple[str, ...] = ()  # extra `#SBATCH` options, e.g. "--partition=gpu"
    per_model: dict[str, dict[str, Any]] = field(default_factory=dict)  # validated field values

    def for_model(self, model: str) -> VerlSettings:
        """The settings of one model's runs: its `verl.models` entry replaces those fields."""
        return dataclasses.replace(self, **self.per_model.get(model, {}), per_model={})


def verl_settings(spec: StudySpec) -> VerlSettings:
    """A verl study's settings (parsed and checked when the study was read)."""
    settings = spec.engine_settings
    if not isinstance(settings, VerlSettings):
        raise InputError(f"study {spec.name}: its engine is {spec.engine}, not verl")
    return settings


def settings_for(spec: StudySpec, run: RunSpec) -> VerlSettings:
    """The settings a run of a verl study trains with (its model's own, where given)."""
    return verl_settings(spec).for_model(run.model)


def parse_settings(section: Any) -> VerlSettings:
    """The `verl:` mapping, validated; errors name the field (`verl.nodes: …`). Its `models:`
    maps a model to the fields that differ for its runs (a 72B run on more nodes)."""
    if section is None:
        return VerlSettings()
    values = _values(section, "verl")
    per_model = section.get("models") or {}
    if not isinstance(per_model, dict):
        raise InputError("verl.models: a mapping of model: {nodes: 4, …}")
    for model, sub in per_model.items():
        if isinstance(sub, dict) and "models" in sub:
            raise InputError(f"verl.models.{model}: cannot hold models: itself")
        values.setdefault("per_model", {})[str(model)] = _values(sub, f"verl.models.{model}")
    return VerlSettings(**values)


def _values(section: Any, where: str) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise InputError(f"{where}: a mapping such as {{nodes: 1, gpus_per_node: 8}}")
    unknown = sorted(set(section) - KNOWN)
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {sorted(KNOWN)}")
    values: dict[str, Any] = {}
    for name in ("nodes", "gpus_per_node", "tensor_parallel", "max_prompt_length"):
        if name in section:
            value = section[name]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{where}.{name}: expected an integer >= 1, got {value!r}")
            values[name] = value
    if "gpu_memory_utilization" in section:
        value = section["gpu_memory_utilization"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise InputError(f"{where}.gpu_memory_utilization: expected (0, 1], got {value!r}")
        values["gpu_memory_utilization"] = float(value)
    if "rollout" in section:
        values["rollout"] = _text(section["rollout"], f"{where}.rollout")
    if "entrypoint" in section:
        entry = section["entrypoint"]
        parts = shlex.split(entry) if isinstance(entry, str) else entry
        values["entrypoint"] = tuple(_texts(parts, f"{where}.entrypoint"))
        if not values["entrypoint"]:
            raise InputError(
                f"{where}.entrypoint: give the command, e.g. python3 -m verl.trainer.main_ppo"
            )
    for name in ("overrides", "sbatch"):
        if name in section:
            values[name] = tuple(_texts(section[name], f"{where}.{name}"))
    if "env" in section:
        env = section["env"]
        if not isinstance(env, dict):
            raise InputError(f"{where}.env: a mapping of NAME: value")
        values["env"] = {
            _env_name(k, f"{where}.env"): _text(str(v), f"{where}.env.{k}") for k, v in env.items()
        }
    if "\n" in "".join(values.get("sbatch", ())):
        raise InputError(f"{where}.sbatch: an option must be one line")
    return values


ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        raise InputError(
            f"{where}: {name!r} is not an environment variable name (letters, digits and _, "
            "not starting with a digit)"
        )
    return name


def shell_assignment(name: str, value: str) -> str:
    """NAME=value for a generated shell line: the name checked, the value quoted. Every
    variable rlscale writes into a command or script goes through here."""
    return f"{_env_name(name, 'environment')}={shlex.quote(value)}"


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: expected text, got {value!r}")
    return value


def _texts(value: Any, where: str) -> list[str]:
    if not isinstance(value, list | tuple):
        raise InputError(f"{where}: expected a list of strings")
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]


def unsupported(grpo: GRPOConfig) -> list[str]:
    """The run's GRPO settings verl's `main_ppo` cannot honour, each with its fix."""
    problems = []
    if grpo.drop_uniform_groups:
        problems.append(
            "grpo.drop_uniform_groups: verl's GRPO keeps all-equal groups; set it to false"
        )
    if grpo.stop:
        problems.append("grpo.stop: verl's rollout has no stop strings; leave it empty")
    if grpo.eval_greedy:
        problems.append("grpo.eval_greedy: verl evaluates one way per run; set it to false")
    if grpo.max_flops:
        problems.append(
            "budget.compute: verl cannot stop at a FLOPs budget; give budget.steps only"
        )
    return problems


def check_study(spec: StudySpec) -> None:
    """What a verl study needs before any file is written: real models, data, sizes, and GRPO
    settings that verl can run."""
    if spec.train is None or spec.holdout is None:
        raise InputError(
            "engine verl: give the training and held-out data (train: and holdout: in the "
            "study, or --train and --holdout): verl parquet, JSONL or synth:…"
        )
    for model in spec.models:
        check_model(model)
        if model not in spec.sizes and not (Path(model) / "config.json").exists():
            raise InputError(
                f"sizes: {model} is not a local model directory, so its N cannot be counted; "
                f"add it, e.g. sizes: {{{model}: 6.53e9}}"
            )
    clashes = sorted(set(spec.evals) & {HOLDOUT_SOURCE, "train"})
    if clashes:
        raise InputError(f"evals: {', '.join(clashes)} names verl's own data sources; rename it")
    settings = verl_settings(spec)
    strangers = sorted(set(settings.per_model) - set(spec.models))
    if strangers:
        raise InputError(f"verl.models: {', '.join(strangers)} is not one of the study's models")
    problems = unsupported(spec.grpo.replace(max_flops=spec.compute))
    if problems:
        raise InputError("engine verl: " + "; ".join(problems))


def check_model(model: str) -> None:
    from rlscale.models.ladder import family_of

    if family_of(model) is not None:
        raise InputError(
            f"models: {model} (the micro ladder) trains on the native engine; engine verl "
            "takes Hugging Face model ids or directories, such as Qwen/Qwen2.5-7B"
        )


@dataclass(frozen=True)
class RunFiles:
    """Where a verl run's inputs and outputs live (absolute paths)."""

    folder: Path

    @property
    def train(self) -> Path:
        return self.folder / "train.parquet"

    @property
    def holdout(self) -> Path:
        return self.folder / "holdout.parquet"

    def eval(self, name: str) -> Path:
        return self.folder / f"eval-{name}.parquet"

    @property
    def reward(self) -> Path:
        return self.folder / "reward.py"

    @property
    def checkpoints(self) -> Path:
        return self.folder / "verl_ckpt"

    @property
    def logs(self) -> Path:
        return self.folder / LOG_DIR


def write_run_data(run: RunSpec, folder: Path) -> RunFiles:
    """The run's training sequence, holdout and extra eval sets as verl parquet files, and its
    reward shim. The holdout and eval sets are the same seeded subsets the native engine uses."""
    import pandas as pd

    from rlscale.data import eval_subset, load_problems, prompt_sequence

    g = run.grpo
    files = RunFiles(folder.resolve())
    folder.mkdir(parents=True, exist_ok=True)
    if run.train is None or run.holdout is None:
        raise InputError("engine verl: give the study train: and holdout: data")
    try:
        sequence = prompt_sequence(
            load_problems(run.train), g.total_prompts, g.tau, g.curriculum, g.seed
        )
    except InputError as exc:
        raise InputError(
            f"run {run.name} (τ {run.tau}, {g.steps} steps × {g.prompts_per_step} prompts) on "
            f"{run.train}: {exc}; give more training problems or fewer steps"
        ) from None
    sets = {files.train: ("train", sequence)}
    sets[files.holdout] = (
        HOLDOUT_SOURCE,
        eval_subset(load_problems(run.holdout), g.eval_problems, g.seed),
    )
    for name, source in run.evals.items():
        sets[files.eval(name)] = (name, eval_subset(load_problems(source), g.eval_problems, g.seed))
    for path, (data_source, problems) in sets.items():
        rows = [verl_row(p, data_source, i) for i, p in enumerate(problems)]
        pd.DataFrame(rows).to_parquet(path, index=False)
    files.reward.write_text(REWARD_SHIM)
    return files


def verl_row(problem: Any, data_source: str, index: int) -> dict[str, Any]:
    """One problem in verl's RL dataset schema."""
    return {
        "data_source": data_source,
        "prompt": [{"role": "user", "content": problem.prompt}],
        "ability": "math",
        "reward_model": {"style": "rule", "ground_truth": problem.answer},
        "extra_info": {
            "index": index,
            "id": problem.id,
            "source": problem.source,
            "difficulty": problem.difficulty,
        },
    }


def hydra_overrides(run: RunSpec, settings: VerlSettings, files: RunFiles) -> list[str]:
    """`key=value` overrides for `verl.trainer.main_ppo` that run this RunSpec."""
    g = run.grpo
    values: dict[str, Any] = {
        "algorithm.adv_estimator": "grpo",
        "algorithm.use_kl_in_reward": False,
        "algorithm.norm_adv_by_std_in_grpo": g.std_normalize,
        "data.train_files": [files.train],
        "data.val_files": [files.holdout, *(files.eval(n) for n in run.evals)],
        "data.train_batch_size": g.prompts_per_step,
        "data.max_prompt_length": settings.max_prompt_length,
        "data.max_response_length": g.max_new_tokens,
        "data.shuffle": False,  # the file is already in the run's order
        "data.filter_overlong_prompts": False,  # nothing dropped silently: too long is an error
        "data.truncation": "error",
        "actor_rollout_ref.model.path": run.model,
        "actor_rollout_ref.actor.optim.lr": g.lr,
        "actor_rollout_ref.actor.optim.betas": list(g.betas),
        "actor_rollout_ref.actor.optim.weight_decay": g.weight_decay,
        "actor_rollout_ref.actor.optim.lr_warmup_steps": g.warmup_steps,
        "actor_rollout_ref.actor.optim.clip_grad": g.grad_clip,
        "actor_rollout_ref.actor.grad_clip": g.grad_clip,
        "actor_rollout_ref.actor.ppo_mini_batch_size": g.prompts_per_step // g.mini_batches,
        "actor_rollout_ref.actor.ppo_epochs": g.updates_per_batch,
        "actor_rollout_ref.actor.use_kl_loss": g.kl_coef > 0,
        "actor_rollout_ref.actor.kl_loss_coef": g.kl_coef,
        "actor_rollout_ref.actor.kl_loss_type": {"k3": "low_var_kl", "k1": "kl"}[g.kl_estimator],
        "actor_rollout_ref.actor.clip_ratio_low": g.clip_low,
        "actor_rollout_ref.actor.clip_ratio_high": g.clip_high,
        "actor_rollout_ref.actor.loss_agg_mode": {
            "token-mean": "token-mean",
            "seq-mean": "seq-mean-token-mean",
        }[g.aggregation],
        "actor_rollout_ref.actor.entropy_coeff": 0,
        "actor_rollout_ref.rollout.name": settings.rollout,
        "actor_rollout_ref.rollout.n": g.group_size,
        "actor_rollout_ref.rollout.temperature": g.temperature,
        "actor_rollout_ref.rollout.top_p": g.top_p,
        "actor_rollout_ref.rollout.seed": g.seed,
        "actor_rollout_ref.rollout.tensor_model_parallel_size": settings.tensor_parallel,
        "actor_rollout_ref.rollout.gpu_memory_utilization": settings.gpu_memory_utilization,
        "actor_rollout_ref.rollout.val_kwargs.n": g.eval_samples,
        "actor_rollout_ref.rollout.val_kwargs.temperature": g.eval_temperature,
        "actor_rollout_ref.rollout.val_kwargs.do_sample": g.eval_temperature > 0,
        "reward.custom_reward_function.path": files.reward,
        "reward.custom_reward_function.name": "compute_score",
        "trainer.project_name": f"rlscale-{run.study}",
        "trainer.experiment_name": run.name,
        "trainer.logger": ["console", "file"],
        "trainer.val_before_train": True,  # step 0: L before training
        "trainer.test_freq": g.eval_every,
        "trainer.save_freq": g.checkpoint_every,
        "trainer.max_actor_ckpt_to_keep": g.keep_checkpoints,
        "trainer.total_epochs": 1,
        "trainer.total_training_steps": g.steps,
        "trainer.resume_mode": "auto",
        "trainer.default_local_dir": files.checkpoints,
        "trainer.nnodes": settings.nodes,
        "trainer.n_gpus_per_node": settings.gpus_per_node,
        "trainer.critic_warmup": 0,
        "hydra.run.dir": files.folder / "hydra",
    }
    return [f"{key}={hydra_value(value)}" for key, value in values.items()] + list(
        settings.overrides
    )


def hydra_value(value: Any) -> str:
    """A value in Hydra's override grammar: lists in brackets, text quoted unless plain."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text):
        return text
    if "'" in text or "\\" in text:
        raise InputError(f"{text!r}: quotes and backslashes cannot go into a verl override")
    return f"'{text}'"


def command(run: RunSpec, settings: VerlSettings, files: RunFiles) -> list[str]:
    return [*settings.entrypoint, *hydra_overrides(run, settings, files)]


def attempt_log(files: RunFiles) -> Path:
    """A new file-logger path for one attempt; names sort in time order."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return files.logs / f"{stamp}-{time.time_ns() % 10**9:09d}.jsonl"


def run_env(settings: VerlSettings, log: Path | str) -> dict[str, str]:
    """Environment for one attempt: the file logger's path, and the study's variables."""
    return {"VERL_FILE_LOGGER_PATH": str(log), "HYDRA_FULL_ERROR": "1"} | settings.env


def sbatch_script(run: RunSpec, settings: VerlSettings, files: RunFiles) -> str:
    """A Slurm batch script for the run: `sbatch` it (requeued or resubmitted, it resumes from
    verl's last checkpoint and logs the new attempt to a file of its own)."""
    log_dir = shlex.quote(str(files.logs))
    if "\n" in str(files.folder) or "\n" in run.name:
        raise InputError(f"{files.folder!r}: a Slurm script cannot name a folder with a newline")
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={run.name}",
        f"#SBATCH --nodes={settings.nodes}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={settings.gpus_per_node}",
        f"#SBATCH --output={files.folder}/slurm-%j.out",
        *(f"#SBATCH {option}" for option in settings.sbatch),
        "set -euo pipefail",
        f"# rlscale study {run.study}, run {run.name} (model {run.model}, seed {run.seed}, "
        f"tau {run.tau})",
        f"mkdir -p {log_dir}",
        f'export VERL_FILE_LOGGER_PATH={log_dir}/"$(date -u +%Y%m%dT%H%M%S)-$SLURM_JOB_ID.jsonl"',
        "export HYDRA_FULL_ERROR=1",
        *(f"export {shell_assignment(k, v)}" for k, v in settings.env.items()),
    ]
    if settings.nodes > 1:
        lines += ray_on_slurm(settings.gpus_per_node)
    overrides = (shlex.quote(o) for o in hydra_overrides(run, settings, files))
    body = " \\\n    ".join([shlex.join(settings.entrypoint), *overrides])
    return "\n".join(lines) + "\n" + body + "\n"


def ray_on_slurm(gpus: int) -> list[str]:
    """Several nodes: a Ray head on the first node and a worker on each other one (one Slurm
    task each, in the background), then verl on the head joins that cluster via RAY_ADDRESS."""
    return [
        'mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")',
        'head_ip=$(srun -N1 -n1 -w "${nodes[0]}" hostname --ip-address | cut -d" " -f1)',
        'srun -N1 -n1 -w "${nodes[0]}" ray start --head --node-ip-address="$head_ip" \\',
        f"    --port=6379 --num-gpus={gpus} --block &",
        "sleep 15",
        'for node in "${nodes[@]:1}"; do',
        f'    srun -N1 -n1 -w "$node" ray start --address="$head_ip:6379" --num-gpus={gpus} \\',
        "        --block &",
        "done",
        "sleep 15",
        'export RAY_ADDRESS="$head_ip:6379"',
    ]


def model_size(model: str, sizes: dict[str, float]) -> float:
    """N (non-embedding parameters) of a verl run's model: the study's `sizes`, else counted
    from the model directory's config.json (no weights loaded)."""
    if model in sizes:
        return sizes[model]
    if (Path(model) / "config.json").exists():
        return _counted_size(model)
    raise InputError(
        f"sizes: {model} is not a local directory, so its N cannot be counted; "
        f"give it in the study, e.g. sizes: {{{model}: 6.53e9}}"
    )


@functools.cache
def _counted_size(model: str) -> float:
    """Counted once per process: a study's logs are synced every second while it runs."""
    from rlscale.models.load import model_info

    return float(model_info(model)["N"])


def collect(run: RunSpec, folder: Path, n: float) -> tuple[list[dict[str, Any]], bool]:
    """The run's StepRecords from all its attempts' logs, and whether every step is there."""
    from rlscale.engines.verl_logs import read_log, to_records

    logs = sorted((folder / LOG_DIR).glob("*.jsonl"))
    steps = [read_log(p) for p in logs]
    if not any(steps):
        return [], False
    ingested = to_records(steps, n, run.grpo.prompts_per_step, run.name, HOLDOUT_SOURCE)
    g = run.grpo
    identity = {"model": run.model, "seed": run.seed, "tau": run.tau}
    if run.family is not None:
        identity["family"] = run.family
    progress = _progress(RunFiles(folder.resolve()).train)
    records = [
        r | identity | (progress.columns(int(r["prompts_seen"])) if progress else {})
        for r in ingested.records
    ]
    first, last = records[0], records[-1]
    complete = not ingested.gaps and first["step"] == 0 and last["step"] >= g.steps
    complete = complete and first["eval_L"] is not None  # L before training
    return records, complete


def _progress(train: Path) -> Progress | None:
    """The run's place in its prompt sequence, from the training file `prepare` wrote in the
    run's order (None when it is gone: the data columns are then left out, not guessed)."""
    if not train.exists():
        return None
    return _progress_of(train, train.stat().st_mtime_ns)


@functools.cache
def _progress_of(train: Path, mtime_ns: int) -> Progress:
    """Read once per file version: the logs are synced every second while a run goes."""
    return train_file_progress(train)


def train_file_progress(train: Path) -> Progress:
    """A verl training parquet's prompts, in file order (a run with data.shuffle=False uses
    them in that order), as the run's place in its sequence: its problems are told apart by
    `extra_info.id` when there, else by prompt text."""
    import pandas as pd

    try:
        frame = pd.read_parquet(train)
    except (OSError, ValueError) as exc:
        raise InputError(f"{train}: cannot read the training file: {exc}") from None
    if "extra_info" in frame and all(
        isinstance(x, dict) and "id" in x for x in frame["extra_info"]
    ):
        return Progress([str(x["id"]) for x in frame["extra_info"]])
    if "prompt" not in frame:
        raise InputError(f"{train}: no 'prompt' or 'extra_info.id' column to tell problems apart")
    return Progress([str(p) for p in frame["prompt"]])


def publish(run: RunSpec, folder: Path, n: float) -> bool:
    """Write the run's `steps.jsonl` from its logs, and `summary.json` once it is complete."""
    from rlscale.steprecord import check_step_record
    from rlscale.store import STEPS_FILE, rewrite_records, run_summary, write_json_file

    records, complete = collect(run, folder, n)
    if not records:
        return False
    for record in records:
        check_step_record(record)
    rewrite_records(folder / STEPS_FILE, records)
    if complete:
        write_json_file(folder / "summary.json", run_summary(records) | {"engine": "verl"})
    return complete
