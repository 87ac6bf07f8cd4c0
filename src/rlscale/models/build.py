"""Warm-start base models for the micro ladder (SFT), cached by content hash.

Two phases, the same data and number of steps for every rung, so the ladder behaves like a model
family that saw the same pretraining data (a token budget, not a per-rung competence gate, which
would erase the size effect): (a) clean worked solutions of every difficulty level; (b) a short
phase where a fraction q of the solutions carry one plausible wrong step (a result off by one,
continued consistently), so models sample wrong steps they could avoid — pass@1 error well above
pass@k error: something for RL to amplify. The learning rate follows µP's 1/width rule
(`lr_width / hidden`), as a real family tunes its pretraining rate per size: one rate for every
rung left the smallest rungs undertrained or the largest unstable (issue 16's closing note). The
warm-start data draw every difficulty level equally often, repeats allowed, so the easy levels
with few distinct problems keep their share.

A build is written to a temporary directory and renamed into place only when complete, so a
half-written cache entry is never used; the same rung and configuration are reused, not retrained.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rlscale.data import Problem, generate
from rlscale.errors import InputError
from rlscale.models.ladder import Rung, cache_root
from rlscale.models.prompts import encode_prompt

BUILD_VERSION = "8"
Progress = Callable[[str, int, int, float], None]  # phase, step, steps, loss


@dataclass(frozen=True)
class BuildConfig:
    task: str = "chains"
    clean_steps: int = 2500
    noisy_steps: int = 300
    batch: int = 64
    lr_width: float = 0.3  # the clean phase's peak learning rate is lr_width / hidden
    noisy_lr_ratio: float = 1 / 3  # the noisy phase's rate, relative to the clean phase's
    wrong_fraction: float = 0.4
    warmup_steps: int = 20
    seed: int = 0
    eval_problems: int = 512
    eval_samples: int = 8
    max_new_tokens: int = 96

    def __post_init__(self) -> None:
        if min(self.clean_steps, self.batch, self.eval_problems, self.eval_samples) < 1:
            raise InputError("clean_steps, batch, eval_problems and eval_samples must be >= 1")
        if self.noisy_steps < 0:
            raise InputError("noisy_steps must be >= 0")
        if not 0 <= self.wrong_fraction <= 1:
            raise InputError("wrong_fraction must be in [0, 1]")
        if min(self.lr_width, self.noisy_lr_ratio) <= 0:
            raise InputError("lr_width and noisy_lr_ratio must be positive")

    def lr(self, rung: Rung) -> float:
        return self.lr_width / rung.hidden


def build_key(rung: Rung, cfg: BuildConfig) -> str:
    blob = json.dumps(
        {"rung": asdict(rung), "build": asdict(cfg), "v": BUILD_VERSION}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def build_dir(rung: Rung, cfg: BuildConfig) -> Path:
    return cache_root() / "models" / f"{rung.name}-{build_key(rung, cfg)}"


SHIPPED = Path(__file__).parent / "weights"  # the default builds, shipped with the package


def built_path(rung: Rung, cfg: BuildConfig | None = None) -> Path | None:
    """The finished build of `rung` (default configuration): the local cache's, else the copy
    shipped with the package when it was built with the same settings; or None."""
    cfg = cfg or BuildConfig()
    path = build_dir(rung, cfg)
    if (path / "build.json").exists():
        return path
    return shipped_path(rung, cfg)


def shipped_path(rung: Rung, cfg: BuildConfig) -> Path | None:
    shipped = SHIPPED / rung.name
    if not (shipped / "build.json").exists():
        return None
    key = json.loads((shipped / "build.json").read_text()).get("key")
    return shipped if key == build_key(rung, cfg) else None


# --- data ------------------------------------------------------------------------------------

_CHAIN = re.compile(r"Compute ([0-9+\-]+)\.")


def corrupt(problem: Problem, rng: random.Random) -> str:
    """The worked solution with one step's result off by one, later steps consistent with it."""
    match = _CHAIN.fullmatch(problem.prompt)
    if match is None:
        raise ValueError(f"not an addsub chain: {problem.prompt!r}")
    tokens = re.findall(r"[+-]|\d+", match.group(1))
    numbers, ops = [int(t) for t in tokens[::2]], tokens[1::2]
    wrong_at = rng.randrange(len(ops))
    steps, total = [], numbers[0]
    for k, (op, n) in enumerate(zip(ops, numbers[1:], strict=True)):
        value = total + n if op == "+" else total - n
        if k == wrong_at:
            value += rng.choice((-1, 1))
        steps.append(f"{total}{op}{n}={value}.")
        total = value
    return " ".join([*steps, f"\\boxed{{{total}}}"])


def encode(
    tokenizer: Any, problems: Sequence[Problem], solutions: Sequence[str]
) -> tuple[Any, Any]:
    """Right-padded (input_ids, labels): the prompt as GRPO and evaluation will see it (<s>
    prompt ' ', or the tokenizer's chat template), then solution </s>, loss on the solution."""
    import torch

    rows, masks = [], []
    for p, solution in zip(problems, solutions, strict=True):
        head = encode_prompt(tokenizer, p.prompt)
        tail = [*tokenizer.encode(solution), tokenizer.eos_token_id]
        rows.append(head + tail)
        masks.append([False] * len(head) + [True] * len(tail))
    width = max(map(len, rows))
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for i, (row, mask) in enumerate(zip(rows, masks, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, : len(row)] = torch.where(torch.tensor(mask), torch.tensor(row), -100)
    return ids, labels


# --- training --------------------------------------------------------------------------------


def train_phase(
    model: Any,
    batches: Sequence[tuple[Any, Any]],
    lr: float,
    warmup: int,
    phase: str,
    progress: Progress | None,
) -> list[float]:
    """AdamW (fused), linear warm-up then cosine decay to 10%; returns the losses."""
    import torch

    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.0, fused=True
    )
    steps = len(batches)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress_ = (step - warmup) / max(steps - warmup, 1)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress_))

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    model.train()
    losses = []
    for step, (ids, labels) in enumerate(batches):
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        schedule.step()
        losses.append(loss.item())
        if progress is not None:
            progress(phase, step + 1, steps, losses[-1])
    return losses


def _batches(
    tokenizer: Any,
    problems: Sequence[Problem],
    batch: int,
    wrong_fraction: float,
    rng: random.Random,
) -> list[tuple[Any, Any]]:
    # Batches keep the generator's mixed lengths: grouping by length (less padding, faster)
    # left the rungs' loss far higher after the same steps.
    out = []
    for start in range(0, len(problems) - batch + 1, batch):
        chunk = problems[start : start + batch]
        solutions = [
            corrupt(p, rng) if rng.random() < wrong_fraction else str(p.solution) for p in chunk
        ]
        out.append(encode(tokenizer, chunk, solutions))
    return out


# --- evaluation ------------------------------------------------------------------------------


def sample_texts(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    samples: int,
    greedy: bool,
    max_new_tokens: int,
    chunk: int = 512,
) -> list[str]:
    """Completions (samples per prompt, prompt-major) from HF generate with left padding."""
    import torch

    texts: list[str] = []
    per_call = max(1, chunk // samples)
    model.eval()
    for start in range(0, len(prompts), per_call):
        part = [encode_prompt(tokenizer, p) for p in prompts[start : start + per_call]]
        enc = tokenizer.pad({"input_ids": part}, padding=True, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(
                **enc,
                do_sample=not greedy,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                num_return_sequences=samples,
                max_new_tokens=max_new_tokens,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        texts += tokenizer.batch_decode(new, skip_special_tokens=True)
    return texts


def evaluate(
    model: Any, tokenizer: Any, problems: Sequence[Problem], samples: int, max_new_tokens: int
) -> dict[str, Any]:
    """Greedy error; pass@1 and pass@k error at temperature 1, with standard errors; the same
    errors per difficulty level (`by_difficulty`)."""
    from rlscale.verify import VerifierPool

    prompts, golds = [p.prompt for p in problems], [p.answer for p in problems]
    greedy = sample_texts(model, tokenizer, prompts, 1, True, max_new_tokens)
    sampled = sample_texts(model, tokenizer, prompts, samples, False, max_new_tokens)
    with VerifierPool(workers=1) as pool:
        g = [v.reward for v in pool.verify(zip(greedy, golds, strict=True))]
        s = [
            v.reward
            for v in pool.verify(
                zip(sampled, [a for a in golds for _ in range(samples)], strict=True)
            )
        ]
    n = len(problems)
    per_problem = [sum(s[i * samples : (i + 1) * samples]) / samples for i in range(n)]
    pass1 = sum(per_problem) / n
    passk = sum(c > 0 for c in per_problem) / n
    var1 = sum((c - pass1) ** 2 for c in per_problem) / max(n - 1, 1)
    by_level: dict[str, list[float]] = {}
    for p, c in zip(problems, per_problem, strict=True):
        by_level.setdefault(f"{p.difficulty:.3f}", []).append(c)
    levels = {
        d: {
            "problems": len(cs),
            "pass1_error": 1 - sum(cs) / len(cs),
            f"pass{samples}_error": 1 - sum(c > 0 for c in cs) / len(cs),
        }
        for d, cs in sorted(by_level.items())
    }
    return {
        "greedy_error": 1 - sum(g) / n,
        "greedy_error_se": _binomial_se(sum(g) / n, n),
        "pass1_error": 1 - pass1,
        "pass1_error_se": math.sqrt(var1 / n),
        f"pass{samples}_error": 1 - passk,
        f"pass{samples}_error_se": _binomial_se(passk, n),
        "eval_problems": n,
        "eval_samples": samples,
        "by_difficulty": levels,
    }


def _binomial_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


# --- the build -------------------------------------------------------------------------------


def build_rung(rung: Rung, cfg: BuildConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Build (or reuse) one rung; returns its build.json figures."""
    final = build_dir(rung, cfg)
    if (final / "build.json").exists():
        return {**json.loads((final / "build.json").read_text()), "reused": True}
    import torch
    from transformers import Qwen2ForCausalLM

    from rlscale.models.params import count_params
    from rlscale.models.tokenizer import char_tokenizer

    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    tokenizer = char_tokenizer()
    config = rung.config(
        len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    )
    model = Qwen2ForCausalLM(config)
    model.config._attn_implementation = "sdpa"
    steps = cfg.clean_steps + cfg.noisy_steps
    problems = generate(cfg.task, "train", steps * cfg.batch, cfg.seed, distinct=False)
    clean = problems[: cfg.clean_steps * cfg.batch]
    noisy = problems[cfg.clean_steps * cfg.batch :]
    lr = cfg.lr(rung)
    batches_a = _batches(tokenizer, clean, cfg.batch, 0.0, rng)
    batches_b = _batches(tokenizer, noisy, cfg.batch, cfg.wrong_fraction, rng)
    tokens = sum(int((ids != tokenizer.pad_token_id).sum()) for ids, _ in batches_a + batches_b)
    losses_a = train_phase(model, batches_a, lr, cfg.warmup_steps, "clean", progress)
    noisy_lr = lr * cfg.noisy_lr_ratio
    losses_b = train_phase(model, batches_b, noisy_lr, 0, "noisy", progress) if batches_b else []
    train_s = time.perf_counter() - start
    model.config._attn_implementation = "eager"  # faster for small-batch decoding on CPU
    holdout = generate(cfg.task, "holdout", cfg.eval_problems, seed=10_000 + cfg.seed)
    figures = evaluate(model, tokenizer, holdout, cfg.eval_samples, cfg.max_new_tokens)
    n, n_total = count_params(model)
    result = {
        "name": rung.name,
        "key": build_key(rung, cfg),
        "N": n,
        "N_total": n_total,
        **figures,
        "train_tokens": tokens,
        "lr": lr,
        "final_loss_clean": losses_a[-1],
        "final_loss_noisy": losses_b[-1] if losses_b else None,
        "train_seconds": train_s,
        "seconds": time.perf_counter() - start,
        "config": asdict(cfg),
        "rung": asdict(rung),
    }
    _publish(final, model, tokenizer, result)
    return {**result, "reused": False}


def _publish(final: Path, model: Any, tokenizer: Any, result: dict[str, Any]) -> None:
    """Write everything into a temporary directory, then rename it into place."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "build.json").write_text(json.dumps(result, indent=2))
    try:
        os.rename(tmp, final)
    except OSError:  # someone else finished the same build first: theirs is as good
        shutil.rmtree(tmp, ignore_errors=True)
