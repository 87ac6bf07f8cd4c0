"""Atomic checkpoints: `ckpt/step-NNNNNN.pt` written to a temp file, fsynced, renamed; then the
pointer `ckpt/latest.json` is replaced the same way. A crash at any moment leaves the previous
complete checkpoint as the one `latest.json` names; older ones beyond `keep` are deleted after."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from rlscale.errors import RlscaleError
from rlscale.store import atomic_write

LATEST = "latest.json"


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:06d}.pt"
    atomic_write(final, lambda fh: torch.save(state, fh))
    pointer = json.dumps({"step": step, "file": final.name}).encode()
    atomic_write(folder / LATEST, lambda fh: fh.write(pointer))
    _fsync_dir(folder)
    for old in sorted(folder.glob("step-*.pt"))[:-keep]:
        if old != final:
            old.unlink(missing_ok=True)
    return final


def load_latest(folder: Path) -> dict[str, Any] | None:
    """The state of the last complete checkpoint, or None when there is none."""
    pointer = folder / LATEST
    if not pointer.exists():
        return None
    entry = json.loads(pointer.read_text())
    state: dict[str, Any] = torch.load(folder / entry["file"], weights_only=True)
    if state.get("step") != entry["step"]:
        raise RlscaleError(
            f"{folder}: checkpoint {entry['file']} does not hold step {entry['step']}"
        )
    return state


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
