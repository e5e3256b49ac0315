"""Shared test fixtures: repository paths and the optional ../shared corpus."""

from __future__ import annotations

import functools
import gc
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "fhir_samples"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The third-party corpus beside the repository; tests using it skip when it is absent."""
    if not (SHARED / "README.md").is_file():
        pytest.skip("../shared corpus not present")
    return SHARED


def load_script(path: Path) -> ModuleType:
    """A script that is not a package module (a benchmark, a maintainer tool) loaded by its path."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def export_generator() -> ModuleType:
    """``benchmarks/generate_export.py``: seeded synthetic exports for the tests."""
    return load_script(REPO / "benchmarks" / "generate_export.py")


def find_chromium() -> str | None:
    """The chromium binary, installing the Debian package when missing and allowed to."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found or not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "install", "-y", "-q", "chromium"], ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "chromium"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=900, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        found = shutil.which("chromium")
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    """Headless Chromium for the browser tests (they skip when it cannot be had)."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("chromium is not installed and could not be installed")
    return binary


def subset(expected: Any, actual: Any) -> bool:
    """``expected`` is contained in ``actual`` (dicts as subsets, lists element-wise, else equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(subset(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return abs(expected - actual) < 1e-6
    return expected == actual


def match_one_to_one(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Problems found when pairing expected findings (field subsets) with actual ones; [] = match."""
    left = list(actual)
    problems = []
    for e in expected:
        hit = next((a for a in left if subset(e, a)), None)
        if hit is None:
            problems.append(f"expected finding not produced: {e}")
        else:
            left.remove(hit)
    problems += [f"unexpected finding: {a['rule']} {a['summary']}" for a in left]
    return problems


_LRU = type(functools.lru_cache(maxsize=1)(len))


def live_values(depth: int = 4) -> Iterator[Any]:
    """Every value a live object holds, for the tests of what a process keeps of past requests: the
    keys and values of each dict, the items of each list and tuple, the slots of other objects, and
    the entries of each ``functools.lru_cache`` (kept in a dict the collector does not list); tuples
    among them are opened ``depth`` levels deep (a tuple of atoms is not tracked by the collector)."""
    gc.collect()
    objects = gc.get_objects()
    objects += [r for obj in objects if type(obj) is _LRU for r in gc.get_referents(obj) if isinstance(r, dict)]

    def opened(v: Any, level: int) -> Iterator[Any]:
        yield v
        if type(v) is tuple and level < depth:
            for x in v:
                yield from opened(x, level + 1)

    for obj in objects:
        if isinstance(obj, dict):
            held: Any = [*obj.keys(), *obj.values()]
        elif isinstance(obj, (list, tuple)):
            held = obj
        else:
            held = [getattr(obj, slot, None) for c in type(obj).__mro__ for slot in getattr(c, "__slots__", ())]
        for v in held:
            yield from opened(v, 0)
