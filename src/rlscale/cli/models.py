"""`rlscale models info|list|build-micro`."""

from __future__ import annotations

from typing import Any

import typer

from rlscale.cli._common import fmt, handles_errors, stdout, write_json

models_app = typer.Typer(
    help="The micro ladder and any Hugging Face causal LM.", no_args_is_help=True
)


@models_app.command("info")
@handles_errors
def info_command(
    model: str = typer.Argument(..., help="A ladder name or a local model directory."),
    json_out: str = typer.Option("", "--json", help="Write as JSON ('-': stdout)."),
) -> None:
    """N (non-embedding), N_total, layers, hidden, heads, vocab, dtype."""
    from rlscale.models import model_info

    info = model_info(model)
    if json_out:
        write_json(info, json_out)
    if json_out != "-":
        stdout().print(", ".join(f"{k} {v}" for k, v in info.items()), markup=False)


@models_app.command("list")
@handles_errors
def list_command(
    json_out: str = typer.Option("", "--json", help="Write as JSON ('-': stdout)."),
) -> None:
    """The ladder in both families: name, family, N, built or not."""
    from rlscale.models.ladder import FAMILIES, LADDER, ladder_name
    from rlscale.models.load import count_params, ladder_path

    rows = []
    for family in FAMILIES:
        for rung in LADDER:
            n, n_total = count_params(_meta_model(rung))  # an instruct rung has its base's shape
            path = ladder_path(rung.name, family)
            rows.append(
                {
                    "name": ladder_name(rung.name, family),
                    "family": family,
                    "base": rung.name,
                    "N": n,
                    "N_total": n_total,
                    "built": path is not None,
                    "path": str(path) if path else None,
                }
            )
    if json_out:
        write_json(rows, json_out)
    if json_out != "-":
        for r in rows:
            stdout().print(
                f"{r['name']:19s} {r['family']:8s} N {r['N']:>9,}  N_total {r['N_total']:>9,}  "
                f"{'built' if r['built'] else 'not built'}",
                markup=False,
            )


def _meta_model(rung: Any) -> Any:
    import torch
    from transformers import Qwen2ForCausalLM

    from rlscale.models.tokenizer import char_tokenizer

    tok = char_tokenizer()
    with torch.device("meta"):
        return Qwen2ForCausalLM(
            rung.config(
                len(tok),
                tok.bos_token_id,
                tok.eos_token_id,
                tok.pad_token_id,
            )
        )


@models_app.command("build-micro")
@handles_errors
def build_command(
    sizes: list[str] = typer.Option([], help="Rungs to build (default: the whole ladder)."),
    family: str = typer.Option(
        "base", help="base: warm-start the base rungs; instruct: their instruct rungs."
    ),
    jobs: int = typer.Option(2, help="Rungs built at once, one torch thread each."),
    clean_steps: int = typer.Option(0, help="Override the shared clean SFT steps."),
    noisy_steps: int = typer.Option(-1, help="Override the noisy-step phase's steps."),
    instruct_steps: int = typer.Option(0, help="Override the instruct round's steps."),
    batch: int = typer.Option(
        0, help="Override the batch size (with --family instruct: the round's and its base's)."
    ),
    eval_problems: int = typer.Option(
        0, help="Override the held-out problems evaluated (instruct: the round's and its base's)."
    ),
    json_out: str = typer.Option("", "--json", help="Write per-rung figures as JSON."),
) -> None:
    """Warm-start (SFT) the ladder's base models, or their instruct rungs (the base rung plus a
    supervised round in an instruction template), into the cache; reuse finished builds."""
    from rlscale.cli._common import stderr
    from rlscale.errors import InputError
    from rlscale.models.build import built_path
    from rlscale.models.ladder import FAMILIES, LADDER, RUNGS

    if family not in FAMILIES:
        raise InputError(
            f"--family {family!r}: unknown family; the families are {', '.join(FAMILIES)}"
        )
    names = [s for item in sizes for s in item.split(",") if s] or [r.name for r in LADDER]
    unknown = [n for n in names if n not in RUNGS]
    if unknown:
        raise InputError(f"unknown rung(s) {', '.join(unknown)}; the ladder is {', '.join(RUNGS)}")
    base_cfg = _base_config(clean_steps, noisy_steps, batch, eval_problems)
    cfg = base_cfg
    if family == "instruct":
        cfg = _instruct_config(base_cfg, instruct_steps, batch, eval_problems)
        missing = [n for n in names if built_path(RUNGS[n], base_cfg) is None]
        if missing:
            stderr().print(f"building the base rung first: {', '.join(missing)}", markup=False)
    results = _build_with_progress(names, cfg, jobs)
    if json_out:
        write_json(results, json_out)
    for r in results:
        stdout().print(_figures_line(r), markup=False)


def _base_config(clean_steps: int, noisy_steps: int, batch: int, eval_problems: int) -> Any:
    from dataclasses import replace

    from rlscale.models.build import BuildConfig

    changes = {
        k: v
        for k, v, unset in (
            ("clean_steps", clean_steps, 0),
            ("batch", batch, 0),
            ("noisy_steps", noisy_steps, -1),
            ("eval_problems", eval_problems, 0),
        )
        if v != unset
    }
    return replace(BuildConfig(), **changes)  # type: ignore[arg-type]


def _instruct_config(base: Any, steps: int, batch: int, eval_problems: int) -> Any:
    """The default round on `base`, with the options given (a 0 leaves the default)."""
    from dataclasses import replace

    from rlscale.models.instruct import InstructConfig

    changes = {
        k: v
        for k, v in (("steps", steps), ("batch", batch), ("eval_problems", eval_problems))
        if v != 0
    }
    return replace(InstructConfig(base=base), **changes)  # type: ignore[arg-type]


def _build_with_progress(names: list[str], cfg: Any, jobs: int) -> list[dict[str, Any]]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from rlscale.cli._common import stderr
    from rlscale.models.ladder_build import build_ladder

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr()) as bar:
        tasks = {n: bar.add_task(n, total=None, info="") for n in names}

        def on_line(name: str, line: dict[str, Any]) -> None:
            bar.update(
                tasks[name],
                completed=line["step"],
                total=line["steps"],
                info=f"{line['phase']} loss {float(line['loss']):.3f}",
            )

        return build_ladder(names, cfg, jobs=max(1, jobs), on_line=on_line)


def _figures_line(r: dict[str, Any]) -> str:
    k = r["eval_samples"]
    line = (
        f"{r['name']:19s} N {r['N']:>9,}  greedy err {fmt(r['greedy_error'], 3)}  "
        f"pass@1 err {fmt(r['pass1_error'], 3)}±{fmt(r['pass1_error_se'], 2)}  "
        f"pass@{k} err {fmt(r[f'pass{k}_error'], 3)}±{fmt(r[f'pass{k}_error_se'], 2)}  "
    )
    if "base" in r:  # an instruct rung: its base rung's pass@1 error beside it
        base = r["base"]
        line += f"base pass@1 err {fmt(base['pass1_error'], 3)}±{fmt(base['pass1_error_se'], 2)}  "
    return line + _took(r)


def _took(result: dict[str, Any]) -> str:
    return "reused" if result["reused"] else f"{float(result['seconds']):.0f} s"
