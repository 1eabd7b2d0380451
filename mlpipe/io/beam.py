"""Beam pipeline options that work offline, shared by every Beam-running part of mlpipe.

Beam >= 2.68's DirectRunner first tries the Prism runner, downloading its binary at run time —
even with ``--direct_running_mode=in_memory`` — so on an offline machine every pipeline pays a
failed download. Unless the arguments name a runner, mlpipe runs Beam in-process on the
FnApiRunner, which still honours ``--direct_running_mode`` and ``--direct_num_workers``.

Within an mlpipe run, building and starting a pipeline is also made cheaper by the Beam patches
of :mod:`mlpipe.library_patches`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mlpipe import library_patches


def names_runner(beam_pipeline_args: Sequence[str]) -> bool:
    return any(a == "--runner" or a.startswith("--runner=") for a in beam_pipeline_args)


def beam_pipeline_options(beam_pipeline_args: Sequence[str]) -> Any:
    """``PipelineOptions`` for the arguments, with the in-process FnApiRunner unless one is named."""
    from apache_beam.options.pipeline_options import PipelineOptions

    library_patches.apply(*library_patches.BEAM)
    args = list(beam_pipeline_args)
    if not names_runner(args):
        args.append("--runner=FnApiRunner")
    return PipelineOptions(args)


def local_worker_processes(beam_pipeline_args: Sequence[str]) -> int:
    """How many worker processes the in-process FnApiRunner runs for these arguments (1 with a
    named runner: there the runner decides)."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    if names_runner(beam_pipeline_args):
        return 1
    options = PipelineOptions(list(beam_pipeline_args)).view_as(DirectOptions)
    if options.direct_running_mode != "multi_processing":
        return 1  # in_memory ignores direct_num_workers; multi_threading shares one GIL
    return options.direct_num_workers or os.cpu_count() or 1
