"""Beam pipeline options that work offline, shared by every Beam-running part of mlpipe.

Beam >= 2.68's DirectRunner first tries the Prism runner, downloading its binary at run time —
even with ``--direct_running_mode=in_memory`` — so on an offline machine every pipeline pays a
failed download. Unless the arguments name a runner, mlpipe runs Beam in-process on the
FnApiRunner, which still honours ``--direct_running_mode`` and ``--direct_num_workers``.

Building a pipeline is also made cheaper (see :func:`_memoize_dofn_specs`): on the small data of
a local run, constructing TFT's and TFMA's graphs costs more than running them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

_specs_lock = threading.Lock()


def names_runner(beam_pipeline_args: Sequence[str]) -> bool:
    return any(a == "--runner" or a.startswith("--runner=") for a in beam_pipeline_args)


def beam_pipeline_options(beam_pipeline_args: Sequence[str]) -> Any:
    """``PipelineOptions`` for the arguments, with the in-process FnApiRunner unless one is named."""
    from apache_beam.options.pipeline_options import PipelineOptions

    _memoize_dofn_specs()
    args = list(beam_pipeline_args)
    if not names_runner(args):
        args.append("--runner=FnApiRunner")
    return PipelineOptions(args)


def _memoize_dofn_specs() -> None:
    """Make Beam inspect each DoFn's state and timer parameters once, not at every use.

    ``apache_beam.transforms.userstate.get_dofn_specs`` wraps and signature-inspects every method
    of a DoFn, and Beam calls it for the same DoFn object when the ParDo is made, when it is
    validated, translated to the runner API and turned into a worker operation. TFT's analysis
    graph has hundreds of ParDos: on the taxi sample these calls took 4.2 s of a 22 s Transform,
    which takes 18.5 s with this. A DoFn's methods and their defaults do not change once it exists, so the
    answer is kept per DoFn object (weakly: the DoFn's lifetime is unchanged) and copied out.
    Process-wide and idempotent.
    """
    from apache_beam.transforms import userstate

    with _specs_lock:
        if getattr(userstate.get_dofn_specs, "memoized_by_mlpipe", False):
            return
        inspect_specs = userstate.get_dofn_specs
        known: weakref.WeakKeyDictionary[Any, tuple[set[Any], set[Any]]] = weakref.WeakKeyDictionary()

        def get_dofn_specs(dofn: Any) -> tuple[set[Any], set[Any]]:
            try:
                with _specs_lock:
                    state_specs, timer_specs = known[dofn]
            except (KeyError, TypeError):  # TypeError: a DoFn that cannot be weakly referenced
                state_specs, timer_specs = inspect_specs(dofn)
                try:
                    with _specs_lock:
                        known[dofn] = (state_specs, timer_specs)
                except TypeError:
                    pass
            return set(state_specs), set(timer_specs)

        get_dofn_specs.memoized_by_mlpipe = True  # type: ignore[attr-defined]
        get_dofn_specs.__doc__ = inspect_specs.__doc__
        userstate.get_dofn_specs = get_dofn_specs
