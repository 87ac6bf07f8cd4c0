from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache (RLSCALE_CACHE) for the test."""
    monkeypatch.setenv("RLSCALE_CACHE", str(tmp_path))
    return tmp_path
