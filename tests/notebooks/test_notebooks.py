"""Every notebook in notebooks/ runs top to bottom in a real Jupyter kernel without an error."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[2] / "notebooks").glob("*.ipynb"))
TAXI_CSV = Path(__file__).parents[2] / "examples" / "data" / "chicago_taxi.csv"
SMALL_ROWS = 3000


@pytest.fixture
def small_taxi_data(tmp_path: Path) -> Path:
    """The first 3,000 trips: the notebook runs the same code as on the full sample, faster."""
    data = tmp_path / "data"
    data.mkdir()
    with open(TAXI_CSV, newline="") as src, open(data / "data.csv", "w", newline="") as dst:
        rows = csv.reader(src)
        writer = csv.writer(dst)
        for _, row in zip(range(SMALL_ROWS + 1), rows, strict=False):
            writer.writerow(row)
    return data


def _text_outputs(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(str(out.get("data", {}).get("text/html", "")))
    return "\n".join(parts)


@pytest.mark.e2e
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_error(path: Path, tmp_path: Path, small_taxi_data: Path, monkeypatch) -> None:
    monkeypatch.setenv("TAXI_DATA_ROOT", str(small_taxi_data))
    monkeypatch.setenv("TAXI_NOTEBOOK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("TAXI_TRAIN_STEPS", "100")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    outputs = _text_outputs(nb)
    assert not any(out.get("output_type") == "error" for cell in nb.cells for out in cell.get("outputs", []))
    if path.name == "taxi_interactive.ipynb":
        assert "blessed: True | pushed version:" in outputs
        assert outputs.count('class="node"') >= 9  # the DAG of every component run
        # ExampleGen's split table (and Transform's, of the same rows): all 3,000 trips, about 2:1
        splits = re.findall(r"<tr><td>(train|eval)</td><td>(\d+)</td></tr>", outputs)
        assert [name for name, _ in splits[:2]] == ["train", "eval"]
        train, eval_ = (int(rows) for _, rows in splits[:2])
        assert train + eval_ == SMALL_ROWS and 0.25 < eval_ / SMALL_ROWS < 0.42, splits
        # the Evaluator's table: the model's AUC beside the trivial model's 0.5, with its margin
        (auc,) = re.findall(r"auc +Overall +(\d\.\d+) +0\.5000 +\+(\d\.\d+) +&gt;= 0\.65 ", outputs)
        assert float(auc[0]) >= 0.65 and abs(float(auc[1]) - (float(auc[0]) - 0.5)) < 1e-4, auc
