"""Progress as plain lines for logs (stdout not a terminal: nohup, a cluster job, CI), where the
rich bars would draw nothing: one line per run event — started, a step now and then (step,
reward, last L, ETA), finished or failed — at a bounded rate."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from rlscale.cli._common import fmt

MIN_SECONDS = 10.0  # at most one step line per run this often (the last step always)
LINES_PER_RUN = 10  # step lines a run prints at most, rate permitting


def is_terminal() -> bool:
    return sys.stdout.isatty()


def every_steps(total: int) -> int:
    """Print every k-th step: about LINES_PER_RUN lines over a run."""
    return max(1, -(-total // LINES_PER_RUN))


@dataclass
class LineRate:
    """When a run's next step line is due: every k-th step and at most one line per
    `min_seconds`, the last step always."""

    total: int
    min_seconds: float = MIN_SECONDS
    last_printed: float = float("-inf")

    def due(self, step: int, now: float) -> bool:
        if step >= self.total:
            return True
        on_cadence = step % every_steps(self.total) == 0
        return on_cadence and now - self.last_printed >= self.min_seconds

    def printed(self, now: float) -> None:
        self.last_printed = now


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def step_line(
    run: str, step: int, total: int, record: dict[str, Any], L: float | None, eta_s: float | None
) -> str:
    reward = fmt(record.get("reward_mean"), 3)
    return f"{run} step={step}/{total} reward={reward} L={fmt(L, 3)} eta={duration(eta_s)}"


def eta(started: float, steps_done: int, steps_left: int, now: float) -> float | None:
    """Seconds left at this session's pace (None before its first step)."""
    if steps_done <= 0:
        return None
    return (now - started) / steps_done * steps_left


class RunLines:
    """One run's plain lines, fed its StepRecords as they are written."""

    def __init__(
        self,
        run: str,
        total: int,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.run, self.total, self.clock = run, total, clock
        self.out = out or sys.stdout
        self.rate = LineRate(total)
        self.started = clock()
        self.first_step: int | None = None
        self.last_L: float | None = None

    def say(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {text}", file=self.out, flush=True)

    def start(self, note: str = "") -> None:
        self.started = self.clock()
        self.say(f"{self.run} started{note}")

    def update(self, record: dict[str, Any]) -> None:
        step, now = int(record["step"]), self.clock()
        if record.get("eval_L") is not None:
            self.last_L = record["eval_L"]
        if self.first_step is None:  # the steps before it were done by an earlier session
            self.first_step = max(step - 1, 0)
        if step == 0 or not self.rate.due(step, now):
            return
        left = eta(self.started, step - self.first_step, self.total - step, now)
        self.rate.printed(now)
        self.say(step_line(self.run, step, self.total, record, self.last_L, left))
