"""bench/ is put on sys.path by tests that import its scripts: a script named like a standard
library module (``statistics.py``) would then replace that module for every later test in the
same worker (KerasTuner's ``statistics.mean`` failed that way)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_no_bench_script_shadows_a_standard_library_module():
    names = {p.stem for p in BENCH.glob("*.py")}
    assert names, BENCH
    assert sorted(names & sys.stdlib_module_names) == []
