"""Killable, memory-capped worker processes that verify answers, in input order, from any thread.

Workers are separate Python processes (`rlscale.verify.worker`) that talk JSON lines over pipes,
so nothing depends on the caller's main module or threads, and nothing relies on signal.alarm
(which fails in threads and cannot interrupt long integer arithmetic). A worker runs one item at a
time; an item that exceeds the wall-clock limit has its worker killed (SIGKILL) and is `timeout`.
A warm spare replaces a killed worker at once, so the next item does not wait for Python and sympy
to start. Each worker caps its address space (RLIMIT_AS): a blow-up ends in MemoryError. A worker
that dies on an item (crash, memory) makes that item `unparsable`. Workers never outlive the
process that started them (`rlscale.verify.worker.die_with_parent`).
"""

from __future__ import annotations

import json
import math
import os
import selectors
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rlscale.verify.answer import MAX_ANSWER_CHARS
from rlscale.verify.judge import Kind

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_BYTES = 2 << 30
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Verdict:
    kind: Kind
    seconds: float

    @property
    def reward(self) -> float:
        return 1.0 if self.kind == "correct" else 0.0


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    buffer: bytes = b""
    ready: bool = False
    lines: deque[bytes] = field(default_factory=deque)

    @property
    def fd(self) -> int:
        assert self.process.stdout is not None
        return self.process.stdout.fileno()

    def send(self, message: object) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def pump(self) -> None:
        """Read what the pipe has; EOFError when the worker is gone."""
        data = os.read(self.fd, 1 << 16)
        if not data:
            raise EOFError
        *complete, self.buffer = (self.buffer + data).split(b"\n")
        self.lines.extend(complete)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def _kill_all(workers: list[_Worker]) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.kill()
    workers.clear()


class VerifierPool:
    """`pool.verify([(response, gold), …]) → [Verdict, …]`; use as a context manager."""

    def __init__(
        self,
        workers: int = 2,
        timeout: float = DEFAULT_TIMEOUT_S,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        cap: int = MAX_ANSWER_CHARS,
    ) -> None:
        if workers < 1 or not 0 < timeout < math.inf or memory_bytes <= 0 or cap <= 0:
            raise ValueError("workers, timeout, memory_bytes and cap must be positive and finite")
        self.timeout, self.memory_bytes, self.cap = timeout, memory_bytes, cap
        self._lock = threading.Lock()
        self._started: list[_Worker] = []  # every live process, killed at exit if not closed
        weakref.finalize(self, _kill_all, self._started)
        self._workers = [self._spawn() for _ in range(workers)]
        self._spare = self._spawn()
        self.replaced = 0

    def _spawn(self) -> _Worker:
        command = [
            sys.executable,
            "-m",
            "rlscale.verify.worker",
            "--memory",
            str(self.memory_bytes),
            "--cap",
            str(self.cap),
            "--parent",
            str(os.getpid()),
        ]
        if threading.current_thread() is threading.main_thread():
            command.append("--death-signal")  # tied to the spawning thread: see the worker
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        worker = _Worker(process)
        self._started[:] = [w for w in self._started if w.process.poll() is None] + [worker]
        return worker

    def _await_ready(self, worker: _Worker) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not worker.ready:
            if not worker.lines:
                if time.monotonic() > deadline:
                    raise RuntimeError("a verifier worker did not start within 60 s")
                worker.pump()
                continue
            worker.ready = json.loads(worker.lines.popleft()) == "ready"

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        self._workers[self._workers.index(worker)] = self._spare
        self._spare = self._spawn()
        self.replaced += 1

    @property
    def pids(self) -> list[int]:
        """Process ids of the active workers (not the spare)."""
        return [w.process.pid for w in self._workers]

    def verify(self, pairs: Iterable[tuple[str, str]]) -> list[Verdict]:
        """Verdicts for (response, gold) pairs, in input order."""
        items = list(pairs)
        with self._lock:
            return self._run(items)

    def _run(self, items: Sequence[tuple[str, str]]) -> list[Verdict]:
        results: list[Verdict | None] = [None] * len(items)
        pending = deque(range(len(items)))
        busy: dict[int, tuple[int, float]] = {}  # worker fd → (item, start)
        while pending or busy:
            self._dispatch(items, pending, busy)
            self._collect(results, busy)
        return [r for r in results if r is not None]

    def _dispatch(
        self,
        items: Sequence[tuple[str, str]],
        pending: deque[int],
        busy: dict[int, tuple[int, float]],
    ) -> None:
        for worker in self._workers:
            if pending and worker.fd not in busy:
                self._await_ready(worker)
                i = pending.popleft()
                worker.send([i, *items[i]])
                busy[worker.fd] = (i, time.perf_counter())

    def _collect(self, results: list[Verdict | None], busy: dict[int, tuple[int, float]]) -> None:
        by_fd = {w.fd: w for w in self._workers if w.fd in busy}
        soonest = min(start for _, start in busy.values()) + self.timeout
        with selectors.DefaultSelector() as selector:
            for fd in by_fd:
                selector.register(fd, selectors.EVENT_READ)
            events = selector.select(max(0.0, soonest - time.perf_counter()))
        for key, _ in events:
            worker = by_fd[key.fd]
            i, start = busy[key.fd]
            try:
                worker.pump()
            except (EOFError, OSError):  # died on this item: crash or memory
                del busy[key.fd]
                self._replace(worker)
                results[i] = Verdict("unparsable", time.perf_counter() - start)
                continue
            if worker.lines:
                index, kind, seconds = json.loads(worker.lines.popleft())
                results[index] = Verdict(kind, seconds)
                del busy[key.fd]
        now = time.perf_counter()
        for fd, (i, start) in list(busy.items()):
            if now - start >= self.timeout:
                del busy[fd]
                self._replace(by_fd[fd])
                results[i] = Verdict("timeout", now - start)

    def close(self) -> None:
        _kill_all(self._started)
        self._workers = []

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
