"""One rung's build in its own process (one torch thread): JSON lines of progress, then result.

`python -m rlscale.models.build_worker --rung NAME [--family base|instruct] --config JSON`
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rung", required=True)
    parser.add_argument("--family", default="base", choices=("base", "instruct"))
    parser.add_argument("--config", required=True)
    args = parser.parse_args()
    import torch
    from transformers.utils import logging as hf_logging

    from rlscale.models.build import BuildConfig, build_rung
    from rlscale.models.instruct import InstructConfig, build_instruct
    from rlscale.models.ladder import RUNGS

    torch.set_num_threads(1)  # two one-thread processes beat one two-thread process
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    last = [0.0]

    def progress(phase: str, step: int, steps: int, loss: float) -> None:
        if time.monotonic() - last[0] > 0.5 or step == steps:
            last[0] = time.monotonic()
            print(
                json.dumps({"phase": phase, "step": step, "steps": steps, "loss": loss}), flush=True
            )

    config, rung = json.loads(args.config), RUNGS[args.rung]
    if args.family == "instruct":
        result = build_instruct(rung, InstructConfig.from_dict(config), progress)
    else:
        result = build_rung(rung, BuildConfig(**config), progress)
    print(json.dumps({"result": result}), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
