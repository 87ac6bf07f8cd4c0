"""The verifier worker: a separate Python process that caps its memory, then judges JSON lines.

Protocol on stdin/stdout, one JSON document per line: the worker first writes `"ready"`; then for
each `[index, response, gold]` it reads, it writes `[index, kind, seconds]`. End of input ends it.
It is started with `python -m rlscale.verify.worker --memory BYTES --cap CHARS`.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from typing import Any

from rlscale.verify.judge import Kind, _math_verify, judge


def _judge_safely(response: str, gold: str, cache: dict[str, Any], cap: int) -> Kind:
    try:
        return judge(response, gold, cache, cap)
    except Exception:  # MemoryError, RecursionError, parser failures on hostile text
        return "unparsable"


def serve(memory_bytes: int, cap: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    _math_verify()  # import before announcing readiness: the first item is then not slowed
    out, cache = sys.stdout, {}  # type: ignore[var-annotated]
    out.write('"ready"\n')
    out.flush()
    for line in sys.stdin:
        index, response, gold = json.loads(line)
        start = time.perf_counter()
        kind = _judge_safely(str(response), str(gold), cache, cap)
        out.write(json.dumps([index, kind, time.perf_counter() - start]) + "\n")
        out.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory", type=int, required=True)
    parser.add_argument("--cap", type=int, required=True)
    args = parser.parse_args()
    serve(args.memory, args.cap)


if __name__ == "__main__":
    main()
