"""Plain progress lines for logs: a bounded rate, readable lines (the CLI's own output is
asserted where train and study run with stdout captured: tests/integrations/test_trackers.py)."""

from __future__ import annotations

import io

from rlscale.cli._plain import LineRate, RunLines, duration, every_steps


def test_step_lines_are_due_every_k_steps_at_a_bounded_rate_and_always_at_the_end() -> None:
    assert every_steps(100) == 10 and every_steps(5) == 1 and every_steps(101) == 11
    rate = LineRate(total=100, min_seconds=10.0)
    assert rate.due(10, now=0.0) and not rate.due(11, now=0.0)  # off the cadence
    rate.printed(0.0)
    assert not rate.due(20, now=5.0)  # on the cadence, but too soon
    assert rate.due(20, now=10.0)
    assert rate.due(100, now=10.5)  # the last step: always


def test_run_lines_say_start_steps_and_eta_without_flooding() -> None:
    out, now = io.StringIO(), [0.0]
    lines = RunLines("micro-s", 100, out=out, clock=lambda: now[0])
    lines.start()
    for step in range(0, 101):  # a step a second: 100 s, lines at most every 10 s
        now[0] = float(step)
        lines.update({"step": step, "reward_mean": 0.25, "eval_L": 0.5 if step % 8 == 0 else None})
    text = [line.split(" ", 1)[1] for line in out.getvalue().splitlines()]
    assert text[0] == "micro-s started"
    assert text[1] == "micro-s step=10/100 reward=0.25 L=0.5 eta=1m30s"
    assert text[-1] == "micro-s step=100/100 reward=0.25 L=0.5 eta=0s"
    assert len(text) == 1 + 10


def test_a_resumed_run_estimates_its_pace_from_this_session_only() -> None:
    out, now = io.StringIO(), [0.0]
    lines = RunLines("r", 40, out=out, clock=lambda: now[0])
    lines.start(" (resuming after step 30)")
    for step in range(31, 41):  # 10 steps, 2 s each
        now[0] = 2.0 * (step - 30)
        lines.update({"step": step, "reward_mean": None})
    text = out.getvalue().splitlines()
    assert text[0].endswith("r started (resuming after step 30)")
    assert text[1].endswith("r step=32/40 reward=— L=— eta=16s")
    assert duration(3725) == "1h02m" and duration(None) == "—"
