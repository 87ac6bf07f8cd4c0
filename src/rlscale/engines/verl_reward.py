"""verl's custom reward function backed by rlscale's verifier (`reward.custom_reward_function`).

verl calls `compute_score` once per response, from several threads of a reward worker; each
worker process keeps one `VerifierPool`, so a response that hangs the checker is killed after the
pool's timeout (reward 0), never waited on, and model output is never evaluated as code.
"""

from __future__ import annotations

import threading
from typing import Any

from rlscale.verify import VerifierPool

_lock = threading.Lock()
_pool: VerifierPool | None = None


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: Any = None, **_: Any
) -> float:
    """1.0 when the response's final answer equals the gold, else 0.0 (verl logs it as acc)."""
    (verdict,) = _shared_pool().verify([(solution_str, str(ground_truth))])
    return verdict.reward


def _shared_pool() -> VerifierPool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = VerifierPool(workers=1)
        return _pool
