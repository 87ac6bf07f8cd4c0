"""Engines by name: the study's `engine:` field picks one."""

from __future__ import annotations

from rlscale.engines.base import Engine
from rlscale.engines.native import NativeEngine
from rlscale.engines.verl_launch import VerlEngine
from rlscale.errors import InputError

ENGINES: dict[str, Engine] = {engine.name: engine for engine in (NativeEngine(), VerlEngine())}


def get_engine(name: str) -> Engine:
    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r}; choose one of: {', '.join(ENGINES)}")
    return ENGINES[name]
