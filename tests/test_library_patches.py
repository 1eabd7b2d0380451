"""mlpipe.library_patches: patches only for the versions they were written for, only during a run,
off with one setting, and a pipeline's outputs are the same with and without them."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpipe import library_patches
from mlpipe.library_patches import ALL, SETTING, Patch, applied, apply, run_scope

REPO = Path(__file__).parents[1]
PACKAGING = importlib.metadata.version("packaging")


def recording_patch(name: str, journal: list[str], written_for: str = f"=={PACKAGING}") -> Patch:
    """A patch checked against the installed ``packaging`` whose install and undo write to ``journal``."""

    def install():
        journal.append(f"install {name}")
        return lambda: journal.append(f"undo {name}")

    return Patch(name, "packaging", written_for, install)


@pytest.fixture(autouse=True)
def patches_on(monkeypatch):
    monkeypatch.delenv(SETTING, raising=False)
    monkeypatch.setattr(library_patches, "_warned", set())  # "warned once" per test, not per session


def test_applied_in_a_run_only_and_undone_last_first_when_the_outermost_scope_ends():
    journal: list[str] = []
    first, second = recording_patch("first", journal), recording_patch("second", journal)
    assert apply(first) == [] and journal == []  # outside a run: nothing changes
    with run_scope():
        assert apply(first) == ["first"]
        with run_scope():  # a node's scope inside the run's
            assert apply(first, second) == ["first", "second"]  # each installed once
        assert journal == ["install first", "install second"] and applied() == ["first", "second"]
    assert journal == ["install first", "install second", "undo second", "undo first"]
    assert applied() == []


def test_unknown_version_is_skipped_with_one_warning(caplog):
    journal: list[str] = []
    old = recording_patch("old", journal, written_for="==0.0.1")
    missing = Patch(
        "missing", "no-such-distribution-mlpipe", "==1.*", lambda: journal.append("x") or (lambda: None)
    )
    with caplog.at_level(logging.WARNING, logger="mlpipe.library_patches"):
        for _ in range(2):
            with run_scope():
                assert apply(old, missing) == []
    assert journal == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "mlpipe.library_patches"]
    assert len(warnings) == 2  # once per patch, not once per run
    assert f"library patch old skipped: written for packaging==0.0.1, installed {PACKAGING}" in warnings[0]
    assert "installed nothing" in warnings[1]


def test_a_patch_that_cannot_be_applied_is_skipped_with_one_warning(caplog):
    def install():
        raise AttributeError("module 'apache_beam.transforms.userstate' has no attribute 'get_dofn_specs'")

    broken = Patch("broken", "packaging", f"=={PACKAGING}", install)
    with caplog.at_level(logging.WARNING, logger="mlpipe.library_patches"):
        for _ in range(2):
            with run_scope():
                assert apply(broken) == [] and applied() == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "mlpipe.library_patches"]
    assert warnings == ["library patch broken skipped: it could not be applied"]


@pytest.mark.parametrize("value", ["off", "OFF", "0", "false", "no"])
def test_the_setting_turns_every_patch_off(monkeypatch, value):
    journal: list[str] = []
    monkeypatch.setenv(SETTING, value)
    with run_scope():
        assert apply(recording_patch("p", journal)) == []
    assert journal == []


def _library_state() -> dict[str, object]:
    from tests.support.patched_run import library_state

    return library_state()


@pytest.mark.parametrize("patch", ALL, ids=[p.name for p in ALL])
def test_every_real_patch_is_skipped_for_a_version_it_was_not_written_for(patch, caplog):
    before = _library_state()
    other = dataclasses.replace(patch, written_for="==0.0.1")
    with caplog.at_level(logging.WARNING, logger="mlpipe.library_patches"), run_scope():
        assert apply(other) == []
        assert _library_state() == before  # the library runs unchanged
    ours = [r.getMessage().split(":")[0] for r in caplog.records if r.name == "mlpipe.library_patches"]
    assert ours == [f"library patch {patch.name} skipped"]


def test_real_patches_change_the_libraries_only_during_the_run():
    import inspect

    from apache_beam.typehints import decorators

    before = _library_state()
    with run_scope():
        assert apply(*ALL) == [p.name for p in ALL]
        during = _library_state()
        captured = decorators.get_signature  # as a module imported during the run would hold it

        def f(x, y=1):
            return x + y

        assert captured(f) is captured(f)  # memoized
    assert {k for k in before if before[k] != during[k]} >= {
        "get_dofn_specs", "get_signature", "view_as", "get_deep_size", "conversion_rules", "fit",
    }  # fmt: skip
    assert _library_state() == before
    assert captured(f) == inspect.signature(f) and captured(f) is not captured(f)  # Beam's own again


@pytest.mark.e2e
def test_pipeline_outputs_are_identical_with_and_without_patches(tmp_path):
    """The same pipeline (TFT on Beam, a Keras Trainer with a TFT serving signature, a Tuner) in two fresh
    processes, patches on and off; each process checks the libraries are as before once the run ended."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    runs = {}
    for setting in ("on", "off"):
        (tmp_path / setting).mkdir()
        runs[setting] = subprocess.Popen(
            [sys.executable, "-m", "tests.support.patched_run", str(tmp_path / setting)],
            env={**env, SETTING: setting}, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
    outputs = {}
    for setting, process in runs.items():
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
        outputs[setting] = json.loads(stdout.strip().splitlines()[-1])
    on, off = outputs["on"], outputs["off"]
    assert sorted(on["applied"]) == sorted(p.name for p in ALL) and off["applied"] == []
    # Floats are compared to within float32 rounding: TFT's mean and variance combiners on Beam sum in
    # an order that varies from run to run, so two runs without patches differ in the last bits too
    # (z-scores differing by 1e-7 were seen); integers, strings and vocabularies are compared exactly.
    assert on["vocabularies"] == off["vocabularies"]
    for split in ("train", "eval"):
        assert len(on["transformed"][split]) == len(off["transformed"][split]) > 100
        for ours, theirs in zip(on["transformed"][split], off["transformed"][split], strict=True):
            assert ours.keys() == theirs.keys()
            for name, values in ours.items():
                if values and isinstance(values[0], float):
                    np.testing.assert_allclose(values, theirs[name], rtol=1e-5, atol=1e-6, err_msg=name)
                else:
                    assert values == theirs[name], name
    np.testing.assert_allclose(on["scores"], off["scores"], rtol=1e-4, atol=1e-6)
    assert len(on["scores"]) == 100 and len(set(on["scores"])) > 10  # a model's scores, not a constant
    assert on["tuner"] == "best: best_hyperparameters.txt"
    # Without the binding, KerasTuner binds to Keras 3 and the Tuner stops with a clear error.
    assert "keras_tuner is bound to Keras 3" in off["tuner"] and SETTING in off["tuner"]
    assert on["changed_after_run"] == on["changed_after_tuner"] == []  # as the user had them
    assert off["changed_after_run"] == []
    assert off["changed_after_tuner"] == ["keras", "keras_tuner_loaded"]  # the user's module imported them
