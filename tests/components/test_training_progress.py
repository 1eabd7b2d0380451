"""Trainer/Tuner progress: a line per tenth of an epoch from fit calls of the node's thread only."""

from __future__ import annotations

import logging
import re
import threading

import numpy as np

from mlpipe.library_patches import run_scope  # the fit hook is a library patch, in effect in a run


def _tiny_model():
    import tf_keras

    model = tf_keras.Sequential([tf_keras.layers.Dense(1, activation="sigmoid", input_shape=(2,))])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def _data():
    x = np.random.default_rng(0).normal(size=(80, 2)).astype("float32")
    return x, (x[:, 0] > 0).astype("float32")


def test_fit_in_scope_logs_step_windows_and_epochs(caplog):
    from mlpipe.components.training_progress import log_training_progress

    log = logging.getLogger("mlpipe.executor.test_trainer")
    x, y = _data()
    with caplog.at_level(logging.INFO, logger=log.name), run_scope(), log_training_progress(log):
        _tiny_model().fit(x, y, batch_size=4, epochs=2, verbose=0)  # 20 steps per epoch
    lines = [r.getMessage() for r in caplog.records if r.name == log.name]
    steps = [re.match(r"epoch (\d)/2 step (\d+)/20 \((\d+)%\): .*loss \d\.\d{4}.*steps/s", m) for m in lines]
    steps = [(int(m[1]), int(m[2]), int(m[3])) for m in steps if m]
    assert steps == [(e, s, s * 5) for e in (1, 2) for s in range(2, 21, 2)]
    done = [m for m in lines if re.match(r"epoch \d/2 epoch done in \d+\.\ds: accuracy", m)]
    assert len(done) == 2


def test_fit_outside_the_scope_or_in_another_thread_is_left_alone(caplog):
    from mlpipe.components.training_progress import log_training_progress

    log = logging.getLogger("mlpipe.executor.test_other")
    x, y = _data()
    caplog.set_level(logging.INFO, logger=log.name)
    _tiny_model().fit(x, y, batch_size=4, verbose=0)
    other = threading.Thread(target=lambda: _tiny_model().fit(x, y, batch_size=4, verbose=0))
    with run_scope(), log_training_progress(log):
        other.start()
        other.join()
    assert [r for r in caplog.records if r.name == log.name] == []
