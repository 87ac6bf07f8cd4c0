"""The StepRecord — one line of a run's `steps.jsonl`, whichever engine trained it — and the one
mapping from StepRecords to the fit table (`N`, `C`, `D`, `L`, …) that fitting, the study's
analysis and the report all read. Field reference: `docs/steprecord.md`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from rlscale.errors import RlscaleError


class StepRecord(TypedDict, total=False):
    """The documented columns; engines that cannot measure one leave it out (or None)."""

    run: str
    model: str
    family: str
    seed: int
    tau: int
    step: int
    N: int
    N_total: int
    prompts_seen: int
    unique_prompts: int
    epoch: float
    tokens_prompt: int
    tokens_response: int
    tokens_cum: int
    tokens_scored: int
    tokens_trained: int
    flops_paper_cum: float
    flops_total_cum: float | None
    reward_mean: float
    response_len_mean: float
    truncated_frac: float
    groups_kept: int
    loss_pg: float
    kl: float
    entropy: float | None
    grad_norm: float
    lr: float
    wall_s: float
    sample_s: float
    verify_s: float
    update_s: float
    eval_s: float
    eval_L: float
    eval_L_se: float
    eval_L_se_sampling: float | None
    eval_n: int
    eval_samples: int
    eval_temperature: float
    eval_L_greedy: float | None
    eval_response_len: float


COLUMNS = StepRecord.__required_keys__ | StepRecord.__optional_keys__
PER_EVAL_SET = re.compile(r"eval_L(_se)?@[^@\s]+")  # each extra --eval set's own L and its SE


def check_step_record(record: Mapping[str, Any]) -> None:
    """Refuse a record with a column the StepRecord does not define (every engine's records pass
    here before they are written, so the format cannot drift apart between engines)."""
    unknown = [k for k in record if k not in COLUMNS and not PER_EVAL_SET.fullmatch(k)]
    if unknown:
        raise RlscaleError(
            f"step {record.get('step')}: {', '.join(sorted(unknown))} not StepRecord column(s) "
            "(docs/steprecord.md): add it to rlscale.steprecord.StepRecord and the docs first"
        )


# StepRecord column → fit-table column.
FIT_COLUMNS = {
    "flops_paper_cum": "C",
    "prompts_seen": "D",
    "eval_L": "L",
    "eval_L_se": "L_se",
    "eval_L_se_sampling": "L_se_sampling",
}
FIT_TABLE = ["run", "N", "seed", "tau", "step", "C", "D", "L", "L_se", "L_se_sampling"]


def is_step_records(df: pd.DataFrame) -> bool:
    """Whether a table holds StepRecords (rather than a fit table already)."""
    return "eval_L" in df.columns and "L" not in df.columns


def to_fit_table(records: pd.DataFrame) -> pd.DataFrame:
    """The evaluated steps after step 0 (step 0 is the evaluation before training, at X = 0) as
    fit-table rows: the StepRecord columns renamed (`flops_paper_cum` → C, `prompts_seen` → D,
    `eval_L` → L, its SEs → L_se, L_se_sampling), every other column kept, the original row
    order and index kept (so callers can name a source row)."""
    rows = records[records["eval_L"].notna()] if "eval_L" in records else records.iloc[:0]
    if "step" in rows.columns:
        rows = rows[pd.to_numeric(rows["step"], errors="coerce") != 0]
    names = {k: v for k, v in FIT_COLUMNS.items() if k in rows.columns and v not in rows.columns}
    table = rows.rename(columns=names)
    for column in ("L_se", "L_se_sampling"):
        if column not in table.columns:
            table[column] = np.nan
    return table
