"""Every Beam pipeline of mlpipe runs in-process unless the pipeline's arguments name a runner; in a run,
Beam's pipeline-building calls are memoized (the Beam patches of mlpipe.library_patches) and answer as
Beam's own do."""

from __future__ import annotations

import gc
import weakref

import pytest

from mlpipe.io.beam import beam_pipeline_options
from mlpipe.library_patches import applied, run_scope


@pytest.fixture(autouse=True)
def in_a_run():
    """The memos are in effect during an mlpipe run only."""
    with run_scope():
        yield


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


def test_dofn_specs_are_memoized_and_stateful_dofns_still_work():
    import apache_beam as beam
    from apache_beam.coders import VarIntCoder
    from apache_beam.testing.util import assert_that, equal_to
    from apache_beam.transforms import userstate

    class CountPerKey(beam.DoFn):
        COUNT = userstate.ReadModifyWriteStateSpec("count", VarIntCoder())

        def process(self, element, count=beam.DoFn.StateParam(COUNT)):  # noqa: B008 (Beam declares state so)
            seen = (count.read() or 0) + 1
            count.write(seen)
            yield element[0], seen

    options = beam_pipeline_options([])
    assert "beam_dofn_specs" in applied()
    dofn = CountPerKey()
    state_specs, timer_specs = userstate.get_dofn_specs(dofn)
    assert ({s.name for s in state_specs}, timer_specs) == ({"count"}, set())
    state_specs.clear()  # callers get copies: the remembered answer stays whole
    assert {s.name for s in userstate.get_dofn_specs(dofn)[0]} == {"count"}
    assert userstate.is_stateful_dofn(dofn) and not userstate.is_stateful_dofn(beam.DoFn())
    with beam.Pipeline(options=options) as pipeline:
        counted = pipeline | beam.Create([("a", 0), ("b", 0), ("a", 0)]) | beam.ParDo(CountPerKey())
        assert_that(counted, equal_to([("a", 1), ("a", 2), ("b", 1)]))


def test_signatures_are_memoized_per_function_and_answer_as_inspect_does():
    import inspect

    import apache_beam as beam
    from apache_beam.transforms import core, ptransform, util
    from apache_beam.typehints import decorators

    beam_pipeline_options([])
    assert "beam_signatures" in applied()
    assert core.get_signature is ptransform.get_signature is util.get_signature is decorators.get_signature

    class Scale(beam.DoFn):
        def process(self, element, factor=2):
            yield element * factor

    first, second = Scale(), Scale()  # as a worker deserializes a DoFn: a new object, same functions
    assert list(decorators.get_signature(Scale.process).parameters) == ["self", "element", "factor"]
    signature = decorators.get_signature(first.process)
    assert signature is decorators.get_signature(second.process)
    assert signature == inspect.signature(first.process)  # bound: no `self`
    assert list(decorators.get_signature(Scale.process).parameters) == ["self", "element", "factor"]
    assert core.get_function_args_defaults(second.process) == (["element", "factor"], [2])
    assert decorators.get_signature(str.strip).parameters["self"].annotation is str  # Beam's own handling

    def fresh(x, y=1):
        return x + y

    assert decorators.get_signature(fresh) is decorators.get_signature(fresh)
    fresh.__defaults__ = (10,)  # what a signature is read from changed: not the remembered answer
    assert decorators.get_signature(fresh).parameters["y"].default == 10
    fresh.__signature__ = inspect.Signature([inspect.Parameter("x", inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    assert list(decorators.get_signature(fresh).parameters) == ["x"]
    del fresh.__signature__

    def short_lived(z):
        return z

    decorators.get_signature(short_lived)
    gone = weakref.ref(short_lived)
    del short_lived
    gc.collect()
    assert gone() is None  # the memo does not keep functions alive
    with beam.Pipeline(options=beam_pipeline_options([])) as pipeline:
        from apache_beam.testing.util import assert_that, equal_to

        scaled = pipeline | beam.Create([1, 2]) | beam.ParDo(Scale()) | beam.Map(fresh, y=10)
        assert_that(scaled, equal_to([12, 14]))


def test_option_views_are_made_once_and_share_values():
    from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions, StandardOptions

    options = beam_pipeline_options(["--experiments=a"])
    view = options.view_as(StandardOptions)
    assert view is options.view_as(StandardOptions) and view.runner == "FnApiRunner"
    view.runner = "DirectRunner"  # a view is a window on its source, as without the memo
    assert options.view_as(StandardOptions).runner == "DirectRunner"
    assert options.get_all_options()["runner"] == "DirectRunner"
    assert options.view_as(DebugOptions).experiments == ["a"]
    other = PipelineOptions(["--experiments=b"])  # another options object has its own views
    assert other.view_as(DebugOptions).experiments == ["b"]
    assert other.view_as(StandardOptions) is not view
    gone = weakref.ref(other)
    del other
    gc.collect()
    assert gone() is None  # the memo does not keep options alive


def test_state_cache_weighs_values_as_objsize_does():
    import importlib
    import sys

    import apache_beam as beam
    import numpy as np
    import objsize
    from apache_beam.runners.worker import statecache
    from apache_beam.testing.util import assert_that, equal_to

    beam_pipeline_options([])
    assert "beam_state_weights" in applied()

    def objsize_weight(*objs):  # what Beam's own get_deep_size computes
        return objsize.get_deep_size(
            *objs,
            get_size_func=statecache._size_func,
            get_referents_func=statecache._get_referents_func,
            filter_func=statecache._filter_func,
        )

    sys.modules.pop("colorsys", None)
    colorsys = importlib.import_module("colorsys")  # loaded after the first weighing below
    values = [
        {"vocabulary": ["a", "bb", "ccc"] * 50, "mean": np.arange(1000, dtype=np.float64)},
        [vars(json_module) for json_module in [sys.modules["json"]]],  # a module's globals: not counted
        ("x" * 10_000, 3.5, None),
    ]
    for value in values:
        assert statecache.get_deep_size(value) == objsize_weight(value) > 0
    assert statecache.get_deep_size([vars(colorsys)]) == objsize_weight([vars(colorsys)])
    assert statecache.get_deep_size(values[0]) > 1000 * 8  # the array's data is counted
    with beam.Pipeline(options=beam_pipeline_options([])) as pipeline:  # side inputs go through the cache
        table = pipeline | "Table" >> beam.Create([("a", 1), ("b", 2)])
        looked_up = (
            pipeline
            | "Keys" >> beam.Create(["a", "b", "a"])
            | beam.Map(lambda key, lookup: lookup[key], lookup=beam.pvalue.AsDict(table))
        )
        assert_that(looked_up, equal_to([1, 2, 1]))
