"""Reading what the trackers wrote with their own formats and readers: W&B's offline run files
(its sync format: a LevelDB-style log of W&B's own protobuf `Record`s, parsed with wandb's
protobuf classes), MLflow's client on the file store, TensorBoard's event files via tbparse."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32768  # the log's block size; a record's chunks never cross a block
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def wandb_chunks(path: Path) -> Iterator[bytes]:
    """The serialised records of one `.wandb` file."""
    data = path.read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic) == (b":W&B", 0xBEE1), f"{path} is not a W&B run file"
    position, pending = 7, b""
    while position + 7 <= len(data):
        left = BLOCK - position % BLOCK
        if left < 7:  # the block's tail is padding
            position += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            position += left
            continue
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk


@dataclass
class WandbRun:
    """What a run's offline files hold (every file of the run id, in time order)."""

    id: str = ""
    name: str = ""
    group: str = ""
    project: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def read_wandb_runs(root: Path) -> dict[str, WandbRun]:
    """Every offline run under `root` (a `wandb/` folder) by its display name."""
    from wandb.proto import wandb_internal_pb2 as pb

    runs: dict[str, WandbRun] = {}
    for path in sorted(root.glob("offline-run-*/run-*.wandb")):
        run: WandbRun | None = None
        for chunk in wandb_chunks(path):
            record = pb.Record()
            record.ParseFromString(chunk)
            kind = record.WhichOneof("record_type")
            if kind == "run":
                name = record.run.display_name
                run = runs.setdefault(name, WandbRun(record.run.run_id, name))
                run.group, run.project = record.run.run_group, record.run.project
                for item in record.run.config.update:
                    run.config[_key(item)] = json.loads(item.value_json)
            assert run is not None or kind in ("header", None), f"{kind} before the run record"
            if kind == "history" and run is not None:
                run.history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
            elif kind == "summary" and run is not None:
                run.summary |= {_key(i): json.loads(i.value_json) for i in record.summary.update}
            elif kind == "config" and run is not None:
                run.config |= {_key(i): json.loads(i.value_json) for i in record.config.update}
            elif kind == "artifact" and run is not None:
                art = record.artifact
                files = [e.path for e in art.manifest.contents]
                run.artifacts.append({"name": art.name, "type": art.type, "files": files})
    return runs


def wandb_series(run: WandbRun, name: str) -> dict[int, float]:
    """One series by step (a step logged twice would show as a repeated step: kept in a list)."""
    out: dict[int, float] = {}
    for row in run.history:
        if name in row:
            step = int(row["_step"])
            assert step not in out, f"step {step} of {name} logged twice"
            out[step] = float(row[name])
    return out


def mlflow_client(uri: str) -> Any:
    import os

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


def tensorboard_scalars(logdir: Path) -> Any:
    """Every scalar under `logdir` as tbparse's table (step, tag, value, dir_name)."""
    from tbparse import SummaryReader

    return SummaryReader(str(logdir), extra_columns={"dir_name"}).scalars


def tensorboard_text(logdir: Path) -> Any:
    from tbparse import SummaryReader

    return SummaryReader(str(logdir), extra_columns={"dir_name"}).text
