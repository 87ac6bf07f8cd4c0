"""Starting an engine's run as a child process that cannot outlive the study that started it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def spawn(argv: list[str], folder: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Appended: a resumed or retried run keeps the log of its earlier attempts.
    log = open(folder / "train.log", "ab")  # noqa: SIM115 - the child keeps it; closed on exit
    return subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_die_with_parent
    )


def _die_with_parent() -> None:
    """In the child before exec: the kernel kills it when the study process dies, so a killed
    study never leaves runs training that a rerun would start a second time."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    return env
