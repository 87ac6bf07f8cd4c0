"""Reading and writing the long tables (CSV, Parquet, JSONL) that fits and simulations exchange."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pandas as pd

from rlscale.errors import InputError
from rlscale.store import parse_records

STDIN = "-"


def read_table(source: str | Path) -> pd.DataFrame:
    """Read CSV, Parquet or JSONL by extension; `-` reads CSV or JSONL from stdin."""
    name = str(source)
    try:
        if name == STDIN:
            return _read_text(sys.stdin.read(), "<stdin>")
        path = Path(name)
        if not path.exists():
            raise InputError(f"{name}: no such file")
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        text = path.read_text()
        if suffix in (".jsonl", ".json", ".ndjson"):
            return _jsonl_frame(text, name)
        return _read_text(text, name)
    except InputError:
        raise
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{name}: cannot read table: {exc}") from exc


def _read_text(text: str, name: str) -> pd.DataFrame:
    if not text.strip():
        raise InputError(f"{name}: empty input")
    if text.lstrip().startswith(("{", "[")):
        return _jsonl_frame(text, name)
    return pd.read_csv(io.StringIO(text))


def _jsonl_frame(text: str, name: str) -> pd.DataFrame:
    """One JSON object a line, as the run store reads them (a torn last line is dropped)."""
    records = parse_records(text, name)
    if not records:
        raise InputError(f"{name}: no records")
    return pd.DataFrame.from_records(records)


def write_table(df: pd.DataFrame, dest: str | Path) -> None:
    """Write by extension (CSV, Parquet, JSONL); `-` writes CSV to stdout."""
    name = str(dest)
    if name == STDIN:
        df.to_csv(sys.stdout, index=False)
        return
    path = Path(name)
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        df.to_parquet(path, index=False)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        df.to_json(path, orient="records", lines=True)
    else:
        df.to_csv(path, index=False)
