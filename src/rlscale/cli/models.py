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
    """The ladder: name, N, built or not."""
    from rlscale.models.build import built_path
    from rlscale.models.ladder import LADDER
    from rlscale.models.load import count_params

    rows = []
    for rung in LADDER:
        n, n_total = count_params(_meta_model(rung))
        path = built_path(rung)
        rows.append(
            {
                "name": rung.name,
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
                f"{r['name']:10s} N {r['N']:>9,}  N_total {r['N_total']:>9,}  "
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
    jobs: int = typer.Option(2, help="Rungs built at once, one torch thread each."),
    clean_steps: int = typer.Option(0, help="Override the shared clean SFT steps."),
    noisy_steps: int = typer.Option(-1, help="Override the noisy-step phase's steps."),
    batch: int = typer.Option(0, help="Override the batch size."),
    eval_problems: int = typer.Option(0, help="Override the held-out problems evaluated."),
    json_out: str = typer.Option("", "--json", help="Write per-rung figures as JSON."),
) -> None:
    """Warm-start (SFT) the ladder's base models into the cache; reuse finished builds."""
    from dataclasses import replace

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from rlscale.cli._common import stderr
    from rlscale.errors import InputError
    from rlscale.models.build import BuildConfig
    from rlscale.models.ladder import LADDER, RUNGS
    from rlscale.models.ladder_build import build_ladder

    names = [s for item in sizes for s in item.split(",") if s] or [r.name for r in LADDER]
    unknown = [n for n in names if n not in RUNGS]
    if unknown:
        raise InputError(f"unknown rung(s) {', '.join(unknown)}; the ladder is {', '.join(RUNGS)}")
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
    cfg = replace(BuildConfig(), **changes)  # type: ignore[arg-type]
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

        results = build_ladder(names, cfg, jobs=max(1, jobs), on_line=on_line)
    if json_out:
        write_json(results, json_out)
    k = cfg.eval_samples
    for r in results:
        stdout().print(
            f"{r['name']:10s} N {r['N']:>9,}  greedy err {fmt(r['greedy_error'], 3)}  "
            f"pass@1 err {fmt(r['pass1_error'], 3)}±{fmt(r['pass1_error_se'], 2)}  "
            f"pass@{k} err {fmt(r[f'pass{k}_error'], 3)}±{fmt(r[f'pass{k}_error_se'], 2)}  "
            f"{_took(r)}",
            markup=False,
        )


def _took(result: dict[str, Any]) -> str:
    return "reused" if result["reused"] else f"{float(result['seconds']):.0f} s"
