"""The verifier worker: a separate Python process that caps its memory, then judges JSON lines.

Protocol on stdin/stdout, one JSON document per line: the worker first writes `"ready"`; then for
each `[index, response, gold]` it reads, it writes `[index, kind, seconds]`. End of input ends it.
It is started with `python -m rlscale.verify.worker --memory BYTES --cap CHARS --parent PID`
and never outlives that parent: the kernel kills it when the parent dies (when the pool asks, see
`VerifierPool`), and a watchdog thread ends it once it has been orphaned.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import resource
import signal
import sys
import threading
import time
from typing import Any

from rlscale.verify.judge import Kind, _math_verify, judge


def _judge_safely(response: str, gold: str, cache: dict[str, Any], cap: int) -> Kind:
    try:
        return judge(response, gold, cache, cap)
    except Exception:  # MemoryError, RecursionError, parser failures on hostile text
        return "unparsable"


PR_SET_PDEATHSIG = 1
WATCH_EVERY_S = 0.5


def die_with_parent(parent: int, kernel_signal: bool) -> None:
    """End this process when `parent` ends. The kernel's parent-death signal fires the moment
    the parent dies even while a judgement holds the GIL, but it is tied to the parent's thread
    that started this process, so the pool asks for it only from the main thread; the watchdog
    covers the rest."""
    if kernel_signal and sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_EVERY_S)
    os._exit(1)


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
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--death-signal", action="store_true")
    args = parser.parse_args()
    die_with_parent(args.parent, args.death_signal)
    serve(args.memory, args.cap)


if __name__ == "__main__":
    main()
