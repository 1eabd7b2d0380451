"""Every Beam pipeline of mlpipe runs in-process unless the pipeline's arguments name a runner."""

from __future__ import annotations

import pytest

from mlpipe.io.beam import beam_pipeline_options


@pytest.mark.parametrize(
    ("args", "runner"),
    [
        ([], "FnApiRunner"),  # never Beam's default DirectRunner, which downloads Prism first
        (["--direct_num_workers=2"], "FnApiRunner"),
        (["--runner", "DirectRunner"], "DirectRunner"),
        (["--runner=FlinkRunner"], "FlinkRunner"),
    ],
)
def test_runner_is_in_process_unless_named(args, runner):
    from apache_beam.options.pipeline_options import StandardOptions

    options = beam_pipeline_options(args)
    assert options.view_as(StandardOptions).runner == runner


def test_pipeline_args_pass_through():
    options = beam_pipeline_options(["--direct_num_workers=2", "--direct_running_mode=multi_threading"])
    assert options.get_all_options()["direct_num_workers"] == 2
    assert options.get_all_options()["direct_running_mode"] == "multi_threading"


def test_pipeline_runs_on_the_default_runner():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    with beam.Pipeline(options=beam_pipeline_options([])) as pipeline:
        squares = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * x)
        assert_that(squares, equal_to([1, 4, 9]))
