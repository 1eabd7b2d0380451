"""Taxi Examples of N million rows in the sharded layout, for the Transform / Evaluator memory benches.

Writes ``--spans`` seeded spans of ``--rows-per-span`` trips (examples/data/generate.py), runs
CsvExampleGen on each span on its own (so ExampleGen's memory is that of one span, whatever the
total) and gathers the spans' TFRecord files as the shards of one Examples directory:
``OUT/examples/Split-<split>/data_tfrecord-0000k-of-0000N.gz`` (the layout contract of issue 20),
with ``OUT/examples/num_rows.json`` holding the row count per split. Prints one JSON line.

    python bench/taxi_examples.py --spans 10 --rows-per-span 1000000 --out /tmp/taxi-10m
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "examples" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, required=True)
    parser.add_argument("--rows-per-span", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import generate

    from mlpipe import LocalDagRunner, Pipeline
    from mlpipe.components.example_gen import CsvExampleGen

    started = time.perf_counter()
    examples_dir = args.out / "examples"
    rows: dict[str, int] = {}
    taxi = generate.load_taxi()
    for span in range(1, args.spans + 1):
        with tempfile.TemporaryDirectory(dir=args.out.parent) as tmp:
            csv_dir = Path(tmp) / "csv"
            csv_dir.mkdir()
            generate.generate_span(taxi, args.rows_per_span, 0, span, False, False).to_csv(
                csv_dir / "data.csv", index=False
            )
            gen = CsvExampleGen(input_base=str(csv_dir))
            result = LocalDagRunner(max_workers=1, progress=False).run(
                Pipeline("prep", Path(tmp) / "root", [gen])
            )
            (examples,) = result.results["CsvExampleGen"].outputs["examples"]
            for split in examples.split_names:
                target = examples_dir / f"Split-{split}"
                target.mkdir(parents=True, exist_ok=True)
                for k, path in enumerate(sorted(glob.glob(os.path.join(examples.split_uri(split), "*.gz")))):
                    shutil.move(path, target / f"span{span:03d}-{k:03d}.gz")
                rows[split] = rows.get(split, 0) + int(examples.get_custom_property(f"num_rows_{split}"))
    for split_dir in examples_dir.glob("Split-*"):
        files = sorted(split_dir.glob("span*.gz"))
        for k, path in enumerate(files):
            path.rename(split_dir / f"data_tfrecord-{k:05d}-of-{len(files):05d}.gz")
    (examples_dir / "num_rows.json").write_text(json.dumps(rows))
    print(json.dumps({"bench": "taxi_examples", "rows": rows, "s": round(time.perf_counter() - started, 1)}))


if __name__ == "__main__":
    main()
