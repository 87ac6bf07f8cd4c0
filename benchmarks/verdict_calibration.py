"""Known-truth calibration of the findings' verdicts (`rlscale.calibration`).

Studies shaped like the micro preset (five sizes over 107×, 100 steps evaluated every 8,
sampling SE 0.006, run-to-run sd 0.01) and like the paper's (seven Qwen2.5 sizes, 105 steps
evaluated every 5, SE 0.02, run-to-run sd 0.01), with one seed (the rules assume the
simulation's run-to-run sd) and with three (they measure it). Cells:

- (c) k(N) saturating (true), linear in ln N and a power of N (false: "holds" must be ≤ 5%);
- (a) k saturating with ordered starts (true) and nothing learning with ordered starts (false);
- (d) τ = 25 costing 0% and 10% of τ = 1's gain (true: under the 25% tolerance) and 45% (false),
  at the shape's noise and at 3× it.

Printed per cell: the share of "holds", "departs" and "not identifiable" over `--studies`
studies, and whether the cell is true or false for the claim; a false cell over 5% "holds"
is marked FAIL, and the script exits 1.

    python benchmarks/verdict_calibration.py [--studies 200] [--shapes micro,paper]
"""

from __future__ import annotations

import argparse
import sys
import time

from rlscale.calibration import SHAPES, calibrate_cell

CELLS = (
    [("c", t, t == "saturating", 1.0) for t in ("saturating", "loglinear", "power")]
    + [("a", t, t == "saturating", 1.0) for t in ("saturating", "none")]
    + [("d", c, c < 0.25, s) for s in (1.0, 3.0) for c in (0.0, 0.10, 0.45)]
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=200)
    parser.add_argument("--shapes", default="micro,paper")
    args = parser.parse_args()
    print(f"{args.studies} studies a cell; 'holds' when false must be ≤ 5%")
    print(f"{'finding':8}{'shape':7}{'seeds':>6}{'truth':>12}{'noise':>7}{'claim':>7}"
          f"{'holds':>8}{'departs':>9}{'not id.':>9}  s")  # fmt: skip
    failed = False
    for name in args.shapes.split(","):
        for finding, truth, true, scale in CELLS:
            for seeds in (1, 3):
                t0 = time.perf_counter()
                cell = calibrate_cell(finding, SHAPES[name], truth, seeds, args.studies, 0, scale)
                r = cell["rates"]
                fail = not true and r["holds"] > 0.05
                failed |= fail
                label = f"{truth:.0%} cost" if finding == "d" else str(truth)
                print(
                    f"({finding})     {name:7}{seeds:>6}{label:>12}{scale:>6g}×"
                    f"{'true' if true else 'false':>7}{r['holds']:>8.1%}{r['departs']:>9.1%}"
                    f"{r['not identifiable']:>9.1%}  {time.perf_counter() - t0:.0f}"
                    + ("  FAIL" if fail else ""),
                    flush=True,
                )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
