"""Every change mlpipe makes to a third-party library's code, in one place, and only during a run.

mlpipe replaces a few functions of pinned libraries (Beam, TensorFlow's AutoGraph, tf-keras) and binds
KerasTuner to tf-keras, to make a run faster or to make TFX-style module code work. Those are
changes to code the user's own programs share when they run in the same process (a notebook, an
Airflow LocalExecutor worker), so each of them:

* is written for the library versions its :class:`Patch` names, and is checked against the
  installed version (``importlib.metadata``) before it is applied: another version (or a patch that
  fails to apply) means the patch is skipped, with one warning per process, and the library runs
  unchanged;
* is applied only inside :func:`run_scope` (the launcher opens one around every node execution and
  ``LocalDagRunner`` one around a run), when the code that needs it first asks for it
  (:func:`apply`), and undone when the outermost scope closes: before and after a run the
  libraries are exactly as the user imported them;
* can be turned off for the whole process with ``MLPIPE_LIBRARY_PATCHES=off`` (read when the
  outermost scope opens). Every patch except :data:`KERAS_TUNER_ON_TF_KERAS` leaves results unchanged
  (tests compare a pipeline's outputs with patches on and off); without that one, a Tuner whose
  module builds ``tf.keras`` models fails with a clear error instead of running.

docs/library-patches.md lists them for users.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("mlpipe.library_patches")

SETTING = "MLPIPE_LIBRARY_PATCHES"
_OFF = {"off", "0", "false", "no"}

Undo = Callable[[], None]


@dataclass(frozen=True)
class Patch:
    """One change to a library: ``install()`` makes it and returns the function that undoes it."""

    name: str
    distribution: str  # the PyPI name whose installed version is checked
    written_for: str  # a PEP 440 specifier, e.g. "==2.72.*"
    install: Callable[[], Undo]


_lock = threading.RLock()
_open_scopes = 0
_enabled = False  # read from SETTING when the outermost scope opened
_undo: dict[str, Undo] = {}  # patches applied in the current outermost scope, in order
_warned: set[str] = set()


@contextmanager
def run_scope() -> Iterator[None]:
    """While open (nestable, thread-safe), :func:`apply` may change libraries; the outermost scope's
    end undoes every change, last applied first."""
    global _open_scopes, _enabled
    with _lock:
        if _open_scopes == 0:
            _enabled = os.environ.get(SETTING, "on").strip().lower() not in _OFF
            if not _enabled and "off" not in _warned:
                _warned.add("off")
                log.info("library patches are off (%s): libraries run unchanged", SETTING)
        _open_scopes += 1
    try:
        yield
    finally:
        with _lock:
            _open_scopes -= 1
            if _open_scopes == 0:
                for undo in reversed(list(_undo.values())):
                    undo()
                _undo.clear()


def apply(*patches: Patch) -> list[str]:
    """Apply ``patches`` until the outermost :func:`run_scope` ends (no-op outside one, when patches
    are off, or for a library version a patch was not written for); the names of those in effect."""
    with _lock:
        if _open_scopes == 0 or not _enabled:
            return []
        for patch in patches:
            if patch.name not in _undo and _written_for_installed(patch):
                try:
                    _undo[patch.name] = patch.install()
                except Exception:  # internals moved within the versions: run the library as it is
                    if patch.name not in _warned:
                        _warned.add(patch.name)
                        log.warning(
                            "library patch %s skipped: it could not be applied", patch.name, exc_info=True
                        )
        return [p.name for p in patches if p.name in _undo]


def applied() -> list[str]:
    """Names of the patches in effect now."""
    with _lock:
        return list(_undo)


def _written_for_installed(patch: Patch) -> bool:
    from packaging.specifiers import SpecifierSet

    try:
        installed = importlib.metadata.version(patch.distribution)
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed is not None and SpecifierSet(patch.written_for).contains(installed, prereleases=True):
        return True
    if patch.name not in _warned:
        _warned.add(patch.name)
        log.warning(
            "library patch %s skipped: written for %s%s, installed %s; %s runs unchanged (slower, or "
            "see docs/library-patches.md)",
            patch.name, patch.distribution, patch.written_for, installed or "nothing", patch.distribution,
        )  # fmt: skip
    return False


def _replace(
    name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]], owner: Any, *importers: Any
) -> Undo:
    """Set ``owner.name`` (and the copies of the name ``importers`` imported) to ``make(original)``.

    The undo puts the original back. A reference to the replacement taken meanwhile (``from m
    import name`` in a module imported during the run) calls the original from then on.
    """
    original = getattr(owner, name)
    live = [True]
    replacement = make(original)

    def routed(*args: Any, **kwargs: Any) -> Any:
        return (replacement if live[0] else original)(*args, **kwargs)

    functools.update_wrapper(routed, original)
    for target in (owner, *importers):
        setattr(target, name, routed)

    def undo() -> None:
        live[0] = False
        for target in (owner, *importers):
            if getattr(target, name) is routed:
                setattr(target, name, original)

    return undo


# --- Beam ----------------------------------------------------------------------------------------
# Building and starting a pipeline on the small data of a local run costs more than running it in
# TFT's and TFMA's graphs. Each memo answers exactly as the call it replaces (the answers are
# immutable or shared by design).

_memo_lock = threading.Lock()


def _memoize_dofn_specs() -> Undo:
    """Make Beam inspect each DoFn's state and timer parameters once, not at every use.

    ``apache_beam.transforms.userstate.get_dofn_specs`` wraps and signature-inspects every method
    of a DoFn, and Beam calls it for the same DoFn object when the ParDo is made, when it is
    validated, translated to the runner API and turned into a worker operation. TFT's analysis
    graph has hundreds of ParDos: on the taxi sample these calls took 4.2 s of a 22 s Transform,
    which takes 18.5 s with this. A DoFn's methods and their defaults do not change once it exists,
    so the answer is kept per DoFn object (weakly: the DoFn's lifetime is unchanged) and copied out.
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

    return _replace("get_dofn_specs", memoized, userstate)


def _memoize_signatures() -> Undo:
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

    return _replace("get_signature", memoized, decorators, core, ptransform, util)  # each imported the name


def _memoize_option_views() -> Undo:
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

    return _replace("view_as", memoized, PipelineOptions)


def _weigh_cached_state_cheaply() -> Undo:
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
        version = (len(sys.modules), last, id(sys.modules.get(last)) if last is not None else None)
        if known["modules"] != version:
            ids = {id(None)}  # as objsize: a singleton is nobody's size
            for module in list(sys.modules.values()):
                try:
                    ids.add(id(vars(module)))
                except TypeError:  # not every sys.modules entry has a __dict__
                    pass
            known.update(modules=version, ids=frozenset(ids))
        ids_now: frozenset[int] = known["ids"]
        return ids_now

    def weighed(_: Callable[..., int]) -> Callable[..., int]:
        def get_deep_size(*objs: Any) -> int:
            context = TraversalContext(settings)
            context.exclude_set = excluded_ids()  # only read while weighing: shared, not copied
            return context.get_deep_size(*objs)

        return get_deep_size

    return _replace("get_deep_size", weighed, statecache)


BEAM_DOFN_SPECS = Patch("beam_dofn_specs", "apache-beam", "==2.72.*", _memoize_dofn_specs)
BEAM_SIGNATURES = Patch("beam_signatures", "apache-beam", "==2.72.*", _memoize_signatures)
BEAM_OPTION_VIEWS = Patch("beam_option_views", "apache-beam", "==2.72.*", _memoize_option_views)
BEAM_STATE_WEIGHTS = Patch("beam_state_weights", "apache-beam", "==2.72.*", _weigh_cached_state_cheaply)
BEAM = (BEAM_DOFN_SPECS, BEAM_SIGNATURES, BEAM_OPTION_VIEWS, BEAM_STATE_WEIGHTS)


# --- TensorFlow AutoGraph ------------------------------------------------------------------------

GRAPH_SAFE_LIBRARIES = ("tf_keras", "tensorflow_transform", "tfx_bsl")


def _skip_autograph_for_graph_safe_libraries() -> Undo:
    """Add :data:`GRAPH_SAFE_LIBRARIES` to AutoGraph's do-not-convert rules.

    AutoGraph converts the Python code that traced (``tf.function``) code calls. TensorFlow 2.16
    exempts ``tensorflow`` and ``keras`` from conversion, but not:

    - ``tf_keras``: every ``fit`` re-converted the whole library (19 s of the first epoch of the
      taxi model; 2.7 s with the exemption). Until TF 2.15 it was the ``keras`` package, and exempt.
    - ``tensorflow_transform``: a serving signature that applies ``tft_layer`` converted TFT's
      ``apply_transform_model`` and its helpers on every trace (~1.4 s of the taxi model's ~3.9 s
      ``model.save``). TFT itself traces with ``autograph=False``: its code never needs conversion.
    - ``tfx_bsl``: the ``tf.data`` map functions of ``tf_dataset_factory`` (TF1-compatible code).

    The user's own functions are still converted: a rule matches a function's module by prefix.
    Functions already traced keep their graphs after the undo; later traces convert as TF would.
    """
    from tensorflow.python.autograph.core import config

    present = {getattr(rule, "_prefix", None) for rule in config.CONVERSION_RULES}
    added = tuple(config.DoNotConvert(name) for name in GRAPH_SAFE_LIBRARIES if name not in present)
    config.CONVERSION_RULES = (*added, *config.CONVERSION_RULES)

    def undo() -> None:
        config.CONVERSION_RULES = tuple(r for r in config.CONVERSION_RULES if not any(r is a for a in added))

    return undo


AUTOGRAPH_GRAPH_SAFE_LIBRARIES = Patch(
    "autograph_graph_safe_libraries", "tensorflow", "==2.16.*", _skip_autograph_for_graph_safe_libraries
)


# --- tf-keras and KerasTuner ---------------------------------------------------------------------

_fit_scope = threading.local()  # .make_callbacks: this thread's callback factories for Model.fit


@contextmanager
def fit_callbacks(make_callback: Callable[[], Any]) -> Iterator[None]:
    """Within the block, every tf-keras ``Model.fit`` called from this thread also gets
    ``make_callback()`` (unless its callbacks hold one of that type), through
    :data:`KERAS_FIT_CALLBACKS`: no effect when that patch is not applied."""
    apply(KERAS_FIT_CALLBACKS)
    previous = getattr(_fit_scope, "make_callbacks", ())
    _fit_scope.make_callbacks = (*previous, make_callback)
    try:
        yield
    finally:
        _fit_scope.make_callbacks = previous


def _add_thread_callbacks_to_fit() -> Undo:
    """Wrap ``tf_keras.Model.fit`` to add the callbacks :func:`fit_callbacks` asks for.

    TFX's module contract gives ``run_fn(fn_args)`` no way to receive callbacks, and the Trainer
    and Tuner want one that logs training progress (``StepWindowLogger``). Calls from other threads
    (another node training in parallel, user code) are passed through unchanged.
    """
    import tf_keras

    def wrapped(fit: Callable[..., Any]) -> Callable[..., Any]:
        def fit_with_callbacks(self: Any, *args: Any, **kwargs: Any) -> Any:
            factories = getattr(_fit_scope, "make_callbacks", ())
            if factories:
                callbacks = list(kwargs.get("callbacks") or [])
                for make in factories:
                    callback = make()
                    if not any(type(c) is type(callback) for c in callbacks):
                        callbacks.append(callback)
                kwargs["callbacks"] = callbacks
            return fit(self, *args, **kwargs)

        return fit_with_callbacks

    return _replace("fit", wrapped, tf_keras.Model)


KERAS_FIT_CALLBACKS = Patch("keras_fit_callbacks", "tf-keras", "==2.16.*", _add_thread_callbacks_to_fit)


def _import_keras_tuner_on_tf_keras() -> Undo:
    """Import ``keras_tuner`` while ``sys.modules["keras"]`` is tf-keras, so it binds to Keras 2.

    KerasTuner 1.4 picks its Keras with ``import keras``: with Keras 3 installed next to tf-keras it
    accepts only Keras 3 models and rejects the ``tf.keras`` models TFX-style module code builds
    ("Expected the model-building function ... to return a valid Keras Model instance"). ``keras``
    is restored right after the import; the undo removes the tf-keras-bound ``keras_tuner`` from
    ``sys.modules`` (if this patch imported it), so a later ``import keras_tuner`` outside a run
    binds as KerasTuner itself decides (re-importing inside the next run takes ~0.01 s).
    """
    if "keras_tuner" in sys.modules:
        return lambda: None  # imported before: nothing of ours to undo, keras2 checks its binding
    import tf_keras

    saved = sys.modules.get("keras")
    sys.modules["keras"] = tf_keras
    try:
        import keras_tuner  # noqa: F401
    finally:
        if saved is None:
            sys.modules.pop("keras", None)
        else:
            sys.modules["keras"] = saved

    def undo() -> None:
        for name in [n for n in sys.modules if n == "keras_tuner" or n.startswith("keras_tuner.")]:
            del sys.modules[name]

    return undo


KERAS_TUNER_ON_TF_KERAS = Patch(
    "keras_tuner_on_tf_keras", "keras-tuner", "==1.4.*", _import_keras_tuner_on_tf_keras
)

ALL = (*BEAM, AUTOGRAPH_GRAPH_SAFE_LIBRARIES, KERAS_FIT_CALLBACKS, KERAS_TUNER_ON_TF_KERAS)
