"""ExampleGens: CSV files or TFRecords -> Examples (gzipped TFRecords of tf.Example, hash splits).

The output is what TFX's ExampleGens write (``Split-<name>/data_tfrecord-*.gz``, span and version
0, ``split_names``), so TFX tools read it unchanged. Rows go to splits by a hash of their content,
so the same row lands in the same split on every run and on every machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import DataError, DefinitionError
from mlpipe.types.standard import Examples

if TYPE_CHECKING:
    import numpy as np

# TFX's default output_config: hash buckets train:eval = 2:1.
DEFAULT_SPLITS: list[dict[str, Any]] = [
    {"name": "train", "hash_buckets": 2},
    {"name": "eval", "hash_buckets": 1},
]


def split_config(output_config: dict[str, Any] | None) -> list[tuple[str, int]]:
    """(split name, hash buckets) pairs from TFX's ``output_config`` JSON shape, checked."""
    if not output_config:
        return [(s["name"], s["hash_buckets"]) for s in DEFAULT_SPLITS]
    example = '{"split_config": {"splits": [{"name": "train", "hash_buckets": 2}, ...]}}'
    splits = (output_config.get("split_config") or {}).get("splits")
    if set(output_config) != {"split_config"} or not isinstance(splits, list) or not splits:
        raise DefinitionError(f"output_config must look like {example}, got {output_config!r}")
    pairs: list[tuple[str, int]] = []
    for split in splits:
        name, buckets = (
            (split.get("name"), split.get("hash_buckets")) if isinstance(split, dict) else (None, None)
        )
        if not isinstance(name, str) or not name or not isinstance(buckets, int) or buckets < 1:
            raise DefinitionError(
                f"output_config: each split needs a non-empty 'name' and a positive int 'hash_buckets', "
                f"got {split!r}"
            )
        pairs.append((name, buckets))
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise DefinitionError(f"output_config: split names must be unique, got {names}")
    return pairs


def write_splits(
    ctx: ExecutionContext, records: Sequence[bytes], fingerprints: np.ndarray, inputs: Sequence[str]
) -> None:
    """Assign each record to a split by its fingerprint's bucket and write the Examples artifact."""
    import numpy as np

    from mlpipe.io.examples import write_examples

    splits = split_config(ctx.parameters["output_config"])
    bucket = fingerprints % np.uint64(sum(b for _, b in splits))
    out = ctx.outputs["examples"]
    upper = 0
    for name, buckets in splits:
        lower, upper = upper, upper + buckets
        rows = np.flatnonzero((bucket >= lower) & (bucket < upper))
        write_examples(out.split_uri(name), (records[i] for i in rows))
        out.set_custom_property(f"num_rows_{name}", len(rows))
        ctx.log.info("split %s: %d rows", name, len(rows))
    out.set_property("span", 0)
    out.set_property("version", 0)
    out.split_names = [name for name, _ in splits]
    out.set_custom_property("input_files", [str(f) for f in inputs])


class _HashSplitExampleGen(Component):
    """What every ExampleGen here shares: ``input_base``, ``output_config``, checked when defined."""

    SPEC = ComponentSpec(
        outputs={"examples": Examples},
        parameters={
            "input_base": ParameterSpec(str),
            "output_config": ParameterSpec(dict, default=None),
        },
    )

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        split_config(self.parameters["output_config"])  # a bad config fails at definition, not at run


class CsvExampleGen(_HashSplitExampleGen):
    """Reads every ``*.csv`` in ``input_base``; types and missing values as in :mod:`mlpipe.io.examples`."""

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        from mlpipe.io import examples as io

        files = io.list_csv_files(ctx.parameters["input_base"])
        raw = io.read_csv_strings(files)
        write_splits(ctx, io.encode_examples(io.infer_column_types(raw)), io.row_fingerprints(raw), files)


class ImportExampleGen(_HashSplitExampleGen):
    """Re-splits existing TFRecord files of serialized tf.Example (gzipped or not) in ``input_base``.

    Every non-hidden file directly in ``input_base`` is read; records are split by a hash of
    their bytes.
    """

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        from mlpipe.io import examples as io

        base = ctx.parameters["input_base"]
        if not os.path.isdir(base):
            raise DataError(
                f"input_base {base!r} is not a directory; pass the folder holding the TFRecord files"
            )
        files = sorted(
            os.path.join(base, n)
            for n in os.listdir(base)
            if not n.startswith(".") and os.path.isfile(os.path.join(base, n))
        )
        records = io.read_tfrecords(files)
        if not records:
            raise DataError(
                f"no TFRecord records in {base!r} ({len(files)} files); expected tf.Example records"
            )
        write_splits(ctx, records, io.record_fingerprints(records), files)
