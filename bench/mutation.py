"""Mutation testing of the core modules with mutmut: how many deliberate bugs the fast tests miss.

Usage: ``python bench/mutation.py [--target NAME ...] [--max-children N] [--keep DIR] [--budget S]``

A target is a set of source files and the fast tests that cover them (TARGETS below). For each
target, the working tree (tracked and untracked-but-not-ignored files, so uncommitted edits count)
is copied to a temporary directory, ``[tool.mutmut]`` is appended to the copy's ``pyproject.toml``,
and ``mutmut run`` mutates only that target's files and runs, for each mutant, only the tests that
executed the mutated function. The repository itself is never modified, so the script can be rerun
at any time (e.g. after a merge) with no cleanup.

Prints one JSON line per target and one for the total: mutants, killed, survived, timeouts, other
(no tests / suspicious / segfault), survival rate = survived / (killed + survived + timeout), and
the names of the survivors (``mutmut show NAME`` in the kept copy prints a survivor's diff).

``--max-survival RATE`` makes the exit status 1 when the total survival rate exceeds RATE: what CI
uses to stop a change that adds code no test can fail for. ``--budget SECONDS`` stops each target
after SECONDS and judges the mutants checked so far (mutmut checks the ones with the fastest tests
first): the bounded CI run. The full run (no budget) takes 5-15 min per target on 2 busy cores.

mutmut switches a mutant on after the tests are imported, so code that only runs at import time
(``@component`` applied at module level, ``Parameter[int]`` in a signature) is only killed by
tests that build components inside the test function. The MySQL-backed variants of the tests are
deselected: they exercise the same code paths as the SQLite ones and need a MariaDB server.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# target -> (files mutated, tests run). The tests are the fast ones that drive the code directly.
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "dsl": (
        ["mlpipe/dsl/*"],
        ["tests/dsl", "tests/orchestration/test_launcher.py", "tests/orchestration/test_conditions.py"],
    ),
    "launcher": (
        ["mlpipe/orchestration/launcher.py"],
        [
            "tests/orchestration/test_launcher.py",
            "tests/orchestration/test_plan.py",
            "tests/orchestration/test_resolver.py",
            "tests/orchestration/test_conditions.py",
            "tests/orchestration/test_validation_failure.py",
        ],
    ),
    "cache": (
        ["mlpipe/orchestration/cache.py"],
        [
            "tests/orchestration/test_launcher.py",
            "tests/orchestration/test_plan.py",
            "tests/orchestration/test_cache_keys.py",
        ],
    ),
}
# MySQL variants exercise the same code as the SQLite ones and need MariaDB; the Beam runner test
# costs 12 s per mutant and covers the Beam runner, not these modules.
PYTEST_ARGS = [
    "-p",
    "no:cacheprovider",
    "-n",
    "0",
    "-x",
    "-q",
    "-m",
    "not e2e",
    "-k",
    "not mysql and not beam",
]
JUDGED = ("killed", "survived", "timeout")
# mutmut exit codes; anything else (no tests ran the mutant, suspicious, segfault) is "other".
STATUS = {
    1: "killed",
    3: "killed",
    0: "survived",
    36: "timeout",
    -24: "timeout",
    24: "timeout",
    152: "timeout",
}


def copy_tree(destination: Path) -> None:
    """The files git knows of (tracked or untracked, not ignored), as they are on disk now."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, check=True, capture_output=True,
    ).stdout.split(b"\0")  # fmt: skip
    for name in filter(None, (item.decode() for item in listed)):
        source = REPO / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def mutmut_config(files: list[str], tests: list[str]) -> str:
    def toml_list(items: list[str]) -> str:
        return "[" + ", ".join(json.dumps(item) for item in items) + "]"

    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["mlpipe"]\n'
        f"only_mutate = {toml_list(files)}\n"
        f"pytest_add_cli_args = {toml_list(PYTEST_ARGS)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(tests)}\n"
        f"also_copy = {toml_list(['components', 'pipelines', 'examples'])}\n"
        "use_git_change_detection = false\n"
    )


def results(workdir: Path) -> dict[str, int | None]:
    exit_codes: dict[str, int | None] = {}
    for meta in (workdir / "mutants").rglob("*.meta"):
        exit_codes.update(json.loads(meta.read_text())["exit_code_by_key"])
    return exit_codes


def summary(name: str, exit_codes: dict[str, int | None], seconds: float) -> dict:
    statuses = {
        key: "not_checked" if code is None else STATUS.get(code, "other") for key, code in exit_codes.items()
    }
    counts = {status: sum(1 for s in statuses.values() if s == status) for status in (*JUDGED, "other", "not_checked")}  # fmt: skip
    judged = sum(counts[status] for status in JUDGED)
    return {
        "bench": "mutation",
        "target": name,
        "mutants": len(statuses),
        **counts,
        "survival_rate": round(counts["survived"] / judged, 4) if judged else None,
        "seconds": round(seconds, 1),
        "survivors": sorted(key for key, status in statuses.items() if status == "survived"),
    }


def run_target(name: str, keep: Path | None, max_children: int, budget: float | None) -> dict:
    files, tests = TARGETS[name]
    workdir = Path(tempfile.mkdtemp(prefix=f"mutation-{name}-"))
    try:
        copy_tree(workdir)
        with open(workdir / "pyproject.toml", "a", encoding="utf-8") as f:
            f.write(mutmut_config(files, tests))
        # mutmut runs the tests inside the process, from mutants/: it must exist before Python starts,
        # or the import system caches it as missing and `tests` cannot be imported from it
        (workdir / "mutants").mkdir()
        env = {**os.environ, "PYTHONPATH": str(workdir / "mutants")}
        started = time.monotonic()
        run = subprocess.Popen(
            [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children)],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        try:
            output, _ = run.communicate(timeout=budget)
        except subprocess.TimeoutExpired:  # out of budget: mutants checked so far are saved
            os.killpg(run.pid, signal.SIGTERM)
            output, _ = run.communicate()
        seconds = time.monotonic() - started
        exit_codes = results(workdir)
        if not any(code is not None for code in exit_codes.values()):
            sys.stderr.write(output[-8000:])
            raise SystemExit(f"mutmut run checked no mutant of {name} (exit {run.returncode})")
        return summary(name, exit_codes, seconds)
    finally:
        if keep is not None:
            shutil.copytree(workdir, keep / name, dirs_exist_ok=True, symlinks=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", choices=sorted(TARGETS), help="default: all")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested in parallel")
    parser.add_argument("--keep", type=Path, help="copy each target's work tree here (to `mutmut show`)")
    parser.add_argument("--max-survival", type=float, help="exit 1 if the total survival rate is higher")
    parser.add_argument(
        "--budget", type=float, help="seconds per target; mutants not reached count as not checked (CI)"
    )
    args = parser.parse_args(argv)
    lines = []
    for name in args.target or sorted(TARGETS):
        lines.append(run_target(name, args.keep, args.max_children, args.budget))
        print(json.dumps(lines[-1]), flush=True)
    total = {key: sum(line[key] for line in lines) for key in ("mutants", *JUDGED, "other", "not_checked")}
    judged = sum(total[key] for key in JUDGED)
    total["survival_rate"] = round(total["survived"] / judged, 4) if judged else None
    total["seconds"] = round(sum(line["seconds"] for line in lines), 1)
    print(json.dumps({"bench": "mutation", "target": "total", **total}), flush=True)
    limit = args.max_survival
    return 1 if limit is not None and (total["survival_rate"] or 0) > limit else 0


if __name__ == "__main__":
    raise SystemExit(main())
