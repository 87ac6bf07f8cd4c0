"""Atomic, checksummed checkpoints.

`ckpt/step-NNNNNN.pt` is written to a temp file, fsynced and renamed; then its entry
`step-NNNNNN.json` (step, file, sha256 of the file's bytes) beside it, and the pointer
`ckpt/latest.json` (the same entry) the same way. A crash at any moment leaves the previous complete
checkpoint named by `latest.json`; older ones beyond `keep` are deleted after.

Loading verifies the checksum: a damaged, truncated or missing newest checkpoint (or a garbled
pointer) falls back to the newest good one, and the caller is told which were skipped; when none is
good it is an error naming the files, never a silent resume from corrupted state.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import torch

from rlscale.errors import InputError
from rlscale.store import atomic_write

LATEST = "latest.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class Resumed:
    """The state of the checkpoint resumed from, and why any newer one was passed over."""

    state: dict[str, Any]
    file: Path
    skipped: tuple[str, ...] = field(default=())


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}.pt"
    digest = hashlib.sha256()
    atomic_write(final, lambda fh: torch.save(state, cast(IO[bytes], _HashingWriter(fh, digest))))
    entry = json.dumps({"step": step, "file": final.name, "sha256": digest.hexdigest()}).encode()
    atomic_write(final.with_suffix(".json"), lambda fh: fh.write(entry))
    atomic_write(folder / LATEST, lambda fh: fh.write(entry))
    _fsync_dir(folder)
    for old in sorted(folder.glob("step-*.pt"))[:-keep]:
        if old != final:
            old.with_suffix(".json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
    return final


def load_latest(folder: Path) -> Resumed | None:
    """The newest checkpoint whose bytes match their checksum, or None when the folder holds no
    complete checkpoint (none, or only a file whose entry was never written). Raises InputError
    naming every file when checkpoints exist but none is good."""
    entries, problems = _entries(folder)
    if not entries and not problems:  # a .pt without its entry is a write a crash cut short
        return None
    for entry in entries:
        file = folder / str(entry["file"])
        why = _why_bad(file, entry)
        if why is None:
            state: dict[str, Any] = torch.load(file, weights_only=True)
            if state.get("step") == entry["step"]:
                return Resumed(state, file, tuple(problems))
            why = f"holds step {state.get('step')}, not {entry['step']}"
        problems.append(f"{file}: {why}")
    raise InputError(
        f"{folder}: no checkpoint is intact ({'; '.join(problems) or 'no checksum entries'}); "
        "start again with another --out"
    )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _HashingWriter:
    """A file's write() that also feeds the bytes to a digest: one pass, no copy in memory."""

    def __init__(self, fh: IO[bytes], digest: Any) -> None:
        self.fh, self.digest = fh, digest

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def _entries(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Checkpoint entries newest first (the pointer's, then each file's own, deduplicated), and
    the entries that could not be read."""
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in [folder / LATEST, *sorted(folder.glob("step-*.json"), reverse=True)]:
        if not path.exists():
            continue
        try:
            entry = json.loads(path.read_text())
            entry["step"], entry["file"], entry["sha256"] = (
                int(entry["step"]),
                str(entry["file"]),
                str(entry["sha256"]),
            )
        except KeyError as exc:
            problems.append(f"{path}: no {exc} (written before checksums, or edited)")
            continue
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: unreadable ({type(exc).__name__})")
            continue
        if "/" in entry["file"] or entry["file"].startswith("."):
            problems.append(f"{path}: names a file outside the folder")
        elif entry not in entries:
            entries.append(entry)
    entries.sort(key=lambda e: -int(e["step"]))
    return entries, problems


def _why_bad(file: Path, entry: dict[str, Any]) -> str | None:
    if not file.exists():
        return "missing"
    if file_sha256(file) != entry["sha256"]:
        return "checksum mismatch (damaged or truncated)"
    return None


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
