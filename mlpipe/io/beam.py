"""Beam pipeline options that work offline, shared by every Beam-running part of mlpipe.

Beam >= 2.68's DirectRunner first tries the Prism runner, downloading its binary at run time —
even with ``--direct_running_mode=in_memory`` — so on an offline machine every pipeline pays a
failed download. Unless the arguments name a runner, mlpipe runs Beam in-process on the
FnApiRunner, which still honours ``--direct_running_mode`` and ``--direct_num_workers``.

Building and starting a pipeline is also made cheaper (see :func:`_memoize_dofn_specs`,
:func:`_memoize_signatures`, :func:`_memoize_option_views`, :func:`_weigh_cached_state_cheaply`):
on the small data of a local run, constructing TFT's and TFMA's graphs costs more than running them. Each memo answers exactly as
the call it replaces (the answers are immutable or shared by design) and is process-wide.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

_memo_lock = threading.Lock()


def names_runner(beam_pipeline_args: Sequence[str]) -> bool:
    return any(a == "--runner" or a.startswith("--runner=") for a in beam_pipeline_args)


def beam_pipeline_options(beam_pipeline_args: Sequence[str]) -> Any:
    """``PipelineOptions`` for the arguments, with the in-process FnApiRunner unless one is named."""
    from apache_beam.options.pipeline_options import PipelineOptions

    _memoize_dofn_specs()
    _memoize_signatures()
    _memoize_option_views()
    _weigh_cached_state_cheaply()
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

    def memoized(inspect_specs: Callable[[Any], tuple[set[Any], set[Any]]]) -> Callable[..., Any]:
        known: weakref.WeakKeyDictionary[Any, tuple[set[Any], set[Any]]] = weakref.WeakKeyDictionary()

        def get_dofn_specs(dofn: Any) -> tuple[set[Any], set[Any]]:
            try:
                with _memo_lock:
                    state_specs, timer_specs = known[dofn]
            except (KeyError, TypeError):  # TypeError: a DoFn that cannot be weakly referenced
                state_specs, timer_specs = inspect_specs(dofn)
                try:
                    with _memo_lock:
                        known[dofn] = (state_specs, timer_specs)
                except TypeError:
                    pass
            return set(state_specs), set(timer_specs)

        return get_dofn_specs

    _replace_once("get_dofn_specs", memoized, userstate)


def _memoize_signatures() -> None:
    """Make Beam compute a Python function's signature once, not at every use.

    Beam asks ``typehints.decorators.get_signature`` for the signature of every DoFn method when a
    ParDo is made, validated, translated, and again when the worker deserializes the DoFn into a
    new object whose methods are the same functions. On TFT's graph that was 11% of Transform.
    ``inspect.Signature`` objects are immutable, so one is shared by all callers. The memo is keyed
    weakly by the function (for a bound method, by its function: binding only drops ``self``), and
    an entry is used only while the attributes a signature is read from (code, defaults, annotations,
    ``__signature__``, ``__wrapped__``) are the same objects as when it was made, so reassigning
    one (as decorators do) is seen. Other callables (classes, builtins, partials) are inspected
    every time as before.
    """
    import types

    from apache_beam.transforms import core, ptransform, util
    from apache_beam.typehints import decorators

    def read_from(function: types.FunctionType) -> tuple[Any, ...]:
        attributes = function.__dict__
        return (
            function.__code__,
            function.__defaults__,
            function.__kwdefaults__,
            function.__annotations__,
            attributes.get("__signature__"),
            attributes.get("__wrapped__"),
        )

    def memoized(inspect_signature: Callable[[Any], Any]) -> Callable[..., Any]:
        known: weakref.WeakKeyDictionary[Any, dict[bool, tuple[tuple[Any, ...], Any]]] = (
            weakref.WeakKeyDictionary()
        )

        def get_signature(func: Any) -> Any:
            if isinstance(func, types.MethodType) and isinstance(func.__func__, types.FunctionType):
                function, bound = func.__func__, True
            elif isinstance(func, types.FunctionType):
                function, bound = func, False
            else:
                return inspect_signature(func)
            sources = read_from(function)
            with _memo_lock:
                remembered = known.get(function, {}).get(bound)
            if remembered is not None and all(a is b for a, b in zip(remembered[0], sources, strict=True)):
                return remembered[1]
            signature = inspect_signature(func)
            with _memo_lock:
                known.setdefault(function, {})[bound] = (sources, signature)
            return signature

        return get_signature

    _replace_once("get_signature", memoized, decorators, core, ptransform, util)  # each imported the name


def _memoize_option_views() -> None:
    """Make ``PipelineOptions.view_as(cls)`` build each view once per options object.

    A view is a new options object parsed from the same flags with argparse; Beam asks for one at
    every ``apply`` (type checking, runner options), which was 10% of Transform's time on the taxi
    sample. Views share their source's option values by design (setting an option on any view sets
    it on all), and the flags of an options object do not change, so a view made once answers
    as a new one would.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    def memoized(make_view: Callable[[Any, type], Any]) -> Callable[..., Any]:
        views: weakref.WeakKeyDictionary[Any, dict[type, Any]] = weakref.WeakKeyDictionary()

        def view_as(self: Any, cls: type) -> Any:
            with _memo_lock:
                view = views.get(self, {}).get(cls)
            if view is None:
                view = make_view(self, cls)
                with _memo_lock:
                    views.setdefault(self, {})[cls] = view
            return view

        return view_as

    _replace_once("view_as", memoized, PipelineOptions)


def _weigh_cached_state_cheaply() -> None:
    """Make the in-process worker's state cache weigh a value without listing every module first.

    The FnApiRunner's worker keeps side inputs in an LRU cache of 100 MB, weighing each value it
    loads with ``objsize`` (``statecache.get_deep_size``). Each weighing starts by collecting the
    ids of every loaded module's globals dict, so that values reachable from them are not counted:
    with TensorFlow loaded that is about 6,000 modules per call (~6 ms), and TFT's and TFMA's graphs
    load side inputs at every stage (taxi sample: 1.9 s of Transform's and Evaluator's time in a
    profile). With the ids kept, a weighing takes ~0.3 ms. Here those ids are collected again only when
    ``sys.modules`` changed as an import changes it (its size, or its last entry: a module removed
    and imported again); the weighing is otherwise objsize's, with Beam's own size, referent and
    filter functions. An entry overwritten in place (``sys.modules[name] = other``) is seen at the
    next import; until then only a weight estimate can differ, and weights only order evictions.
    """
    import sys

    from apache_beam.runners.worker import statecache
    from objsize.traverse import ObjSizeSettings, TraversalContext

    settings = ObjSizeSettings(
        get_size_func=statecache._size_func,
        get_referents_func=statecache._get_referents_func,
        filter_func=statecache._filter_func,
        exclude_modules_globals=False,  # the ids below instead
    )
    known: dict[str, Any] = {"modules": None, "ids": frozenset()}

    def excluded_ids() -> frozenset[int]:
        last = next(reversed(sys.modules), None)
        version = (len(sys.modules), last, id(sys.modules.get(last)))
        if known["modules"] != version:
            ids = {id(None)}  # as objsize: a singleton is nobody's size
            for module in list(sys.modules.values()):
                try:
                    ids.add(id(vars(module)))
                except TypeError:  # not every sys.modules entry has a __dict__
                    pass
            known.update(modules=version, ids=frozenset(ids))
        return known["ids"]

    def weighed(_: Callable[..., int]) -> Callable[..., int]:
        def get_deep_size(*objs: Any) -> int:
            context = TraversalContext(settings)
            context.exclude_set = excluded_ids()  # only read while weighing: shared, not copied
            return context.get_deep_size(*objs)

        return get_deep_size

    _replace_once("get_deep_size", weighed, statecache)


def _replace_once(
    name: str, memoized: Callable[[Any], Callable[..., Any]], owner: Any, *importers: Any
) -> None:
    """Replace ``owner.name`` (and the copies of the name that ``importers`` imported) with
    ``memoized(original)``, once per process: later calls find the replacement and do nothing."""
    with _memo_lock:
        original = getattr(owner, name)
        if getattr(original, "memoized_by_mlpipe", False):
            return
        replacement = memoized(original)
        replacement.memoized_by_mlpipe = True  # type: ignore[attr-defined]
        replacement.__doc__ = original.__doc__
        for target in (owner, *importers):
            setattr(target, name, replacement)
