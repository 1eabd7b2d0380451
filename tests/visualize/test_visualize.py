"""mlpipe.visualize: artifact tables (text, HTML) from real TFDV protos, and the pipeline DAG drawing.

The statistics, schema and anomalies are made by TFDV itself from small DataFrames, once per module;
the DAG tests need no TensorFlow.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from mlpipe.errors import MlpipeError
from mlpipe.ir import InputIR, NodeIR, PipelineIR
from mlpipe.types import (
    ExampleAnomalies,
    Examples,
    ExampleStatistics,
    InfraBlessing,
    Model,
    ModelBlessing,
    ModelEvaluation,
    Schema,
)
from mlpipe.visualize import dag_html, dag_svg, dag_text, render_dag_file, render_html, render_text
from mlpipe.visualize.dag import NOT_RUN, STATE_COLOURS
from mlpipe.visualize.dag_layout import edges, layers, layout

SVG = "{http://www.w3.org/2000/svg}"


# --- fixtures: artifacts written by the real libraries --------------------------------------------
@pytest.fixture(scope="module")
def tfdv_artifacts(tmp_path_factory):
    """Statistics of a train and an eval split, the schema of train, and eval's anomalies.

    The eval split's ``city`` has values the schema has never seen: the anomaly to report.
    """
    import pandas as pd
    import tensorflow_data_validation as tfdv
    from google.protobuf import text_format

    root = tmp_path_factory.mktemp("tfdv")
    train = pd.DataFrame(
        {
            "age": [20.0, 30.0, 40.0, 50.0, None],
            "city": ["a", "b", "a", "c", "a"],
            "score": [1.5, 2.5, 3.5, 4.5, 5.5],
        }
    )
    evaluation = train.assign(city=["x", "y", "x", "z", "x"])
    stats = {
        "train": tfdv.generate_statistics_from_dataframe(train),
        "eval": tfdv.generate_statistics_from_dataframe(evaluation),
    }
    schema = tfdv.infer_schema(stats["train"])
    statistics = ExampleStatistics(str(root / "statistics"), id=3, properties={"span": 0})
    statistics.split_names = ["train", "eval"]
    anomalies = ExampleAnomalies(str(root / "anomalies"), id=5)
    anomalies.split_names = ["train", "eval"]
    for split, split_stats in stats.items():
        os.makedirs(statistics.split_uri(split))
        with open(os.path.join(statistics.split_uri(split), "FeatureStats.pb"), "wb") as f:
            f.write(split_stats.SerializeToString())
        os.makedirs(anomalies.split_uri(split))
        with open(os.path.join(anomalies.split_uri(split), "SchemaDiff.pb"), "wb") as f:
            f.write(tfdv.validate_statistics(split_stats, schema).SerializeToString())
    schema_artifact = Schema(str(root / "schema"), id=4)
    os.makedirs(schema_artifact.uri)
    with open(os.path.join(schema_artifact.uri, "schema.pbtxt"), "w") as f:
        f.write(text_format.MessageToString(schema))
    return {"statistics": statistics, "schema": schema_artifact, "anomalies": anomalies}


def _row(text: str, first_cell: str) -> list[str]:
    """The cells of the table row starting with ``first_cell`` (cells are 2+ spaces apart)."""
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row '{first_cell}' in:\n{text}")


def _section(text: str, title_start: str) -> str:
    """The lines of one section: from its title to the next blank line."""
    return text.split("\n" + title_start, 1)[1].split("\n\n", 1)[0]


def _assert_offline(html: str) -> None:
    """No URL but the SVG namespace name (an identifier, never fetched)."""
    assert re.findall(r"https?://[^\s\"'<>)]*", html.replace('xmlns="http://www.w3.org/2000/svg"', "")) == []
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert re.search(r"url\((?!#)", html) is None


# --- artifacts as text and HTML --------------------------------------------------------------------
def test_statistics_text_has_counts_means_and_top_values(tfdv_artifacts):
    text = render_text(tfdv_artifacts["statistics"])
    train = _section(text, "split train (5 examples): numeric features")
    feature, kind, count, missing, mean, std, low, _median, high, histogram = _row(train, "age")
    assert (feature, kind, count, missing, mean, low, high) == (
        "age",
        "FLOAT",
        "4",
        "20.0%",
        "35",
        "20",
        "50",
    )
    assert std == "11.1803"
    assert len(histogram) == 10 and set(histogram) <= set("▁▂▃▄▅▆▇█")
    assert _row(train, "score")[4] == "3.5"
    categorical = _section(text, "split train (5 examples): categorical features")
    assert _row(categorical, "city")[2:] == ["5", "0.0%", "3", "a (3), c (1), b (1)"]
    assert "span: 0" in text and "split eval (5 examples)" in text


def test_statistics_html_draws_a_histogram_per_numeric_feature(tfdv_artifacts):
    html = render_html(tfdv_artifacts["statistics"])
    assert html.count("<svg") == 4  # age and score, in two splits
    assert "<td>35</td>" in html and "<td>20.0%</td>" in html
    _assert_offline(html)


def test_schema_lists_types_presence_and_domains(tfdv_artifacts):
    text = render_text(tfdv_artifacts["schema"])
    assert _row(text, "city") == ["city", "BYTES", "required", "[1]", "city: a, b, c"]
    assert _row(text, "age")[:3] == ["age", "FLOAT", "optional"]


def test_anomalies_name_the_drifted_feature_per_split(tfdv_artifacts):
    text = render_text(tfdv_artifacts["anomalies"])
    assert _section(text, "split train").strip() == "no anomalies"
    feature, short, description = _row(_section(text, "split eval"), "city")
    assert (feature, short) == ("city", "Unexpected string values")
    assert description.startswith("Examples contain values missing from the schema: x")
    assert "age" not in _section(text, "split eval")
    _assert_offline(render_html(tfdv_artifacts["anomalies"]))


def test_examples_show_row_counts_and_decoded_rows(tmp_path):
    import pyarrow as pa

    from mlpipe.io.examples import encode_examples, write_examples

    examples = Examples(str(tmp_path), id=1, custom_properties={"num_rows_train": 3})
    examples.split_names = ["train"]
    table = pa.table({"name": [b"ann", b"bob", None], "x": [1, 2, 3]})
    write_examples(examples.split_uri("train"), encode_examples(table))
    text = render_text(examples)
    assert _row(_section(text, "splits"), "train") == ["train", "3"]
    rows = _section(text, "split train: first 3 rows")
    assert _row(rows, "name")[:2] == ["name", "x"]
    assert _row(rows, "bob") == ["bob", "2"]
    assert re.search(r"^\s+3$", rows, re.MULTILINE)  # the row without a name


def test_blessings_show_the_verdict(tmp_path):
    model_blessing = ModelBlessing(str(tmp_path), custom_properties={"blessed": 0, "current_model_id": 7})
    text = render_text(model_blessing)
    assert "\nverdict\n  NOT BLESSED\n" in text and "current_model_id: 7" in text
    (tmp_path / "INFRA_BLESSED").touch()
    assert "\n  BLESSED\n" in render_text(InfraBlessing(str(tmp_path)))


def test_evaluation_shows_the_summary_table(tmp_path):
    (tmp_path / "summary.txt").write_text("metric    value  threshold\naccuracy  0.91   >= 0.8\n")
    text = render_text(ModelEvaluation(str(tmp_path)))
    assert "  accuracy  0.91   >= 0.8\n" in text


def test_other_types_list_their_files(tmp_path):
    (tmp_path / "Format-Serving" / "variables").mkdir(parents=True)
    (tmp_path / "Format-Serving" / "saved_model.pb").write_bytes(b"x" * 2048)
    text = render_text(Model(str(tmp_path), id=9))
    assert text.startswith(f"Model 9\n  uri: {tmp_path}\n")
    assert _row(text, "Format-Serving/saved_model.pb") == ["Format-Serving/saved_model.pb", "2.0 KB"]
    assert "not found" in render_text(Model(str(tmp_path / "gone")))


def test_readers_never_import_tensorflow(tfdv_artifacts):
    """``mlpipe show`` must answer in about a second: protobuf modules only."""
    statistics = tfdv_artifacts["statistics"]
    code = (
        "import sys; from mlpipe.types import ExampleStatistics; from mlpipe.visualize import render_text;"
        f"a = ExampleStatistics({statistics.uri!r}); a.split_names = ['train'];"
        "assert '35' in render_text(a); print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- the pipeline DAG ------------------------------------------------------------------------------
def _node(node_id: str, component: str, **inputs: tuple[str, str, str]) -> NodeIR:
    wired = {key: InputIR(*source) for key, source in inputs.items()}
    upstream = tuple(dict.fromkeys(i.producer for i in wired.values()))
    return NodeIR(node_id, f"mlpipe.components.x:{component}", None, {}, wired, {}, upstream)


EXAMPLES = ("example_gen", "examples", "Examples")
SCHEMA = ("schema_gen", "schema", "Schema")
MODEL = ("trainer", "model", "Model")
TAXI = PipelineIR(
    "taxi",
    "/tmp/root",
    {},
    True,
    (
        _node("example_gen", "CsvExampleGen"),
        _node("statistics_gen", "StatisticsGen", examples=EXAMPLES),
        _node("schema_gen", "SchemaGen", statistics=("statistics_gen", "statistics", "ExampleStatistics")),
        _node("transform", "Transform", examples=EXAMPLES, schema=SCHEMA),
        _node(
            "trainer",
            "Trainer",
            examples=("transform", "transformed_examples", "Examples"),
            transform_graph=("transform", "transform_graph", "TransformGraph"),
            schema=SCHEMA,
        ),
        _node("latest_blessed", "Resolver"),
        _node(
            "evaluator",
            "Evaluator",
            examples=EXAMPLES,
            model=MODEL,
            baseline_model=("latest_blessed", "model", "my.types:Model"),
        ),
        _node("pusher", "Pusher", model=MODEL, model_blessing=("evaluator", "blessing", "ModelBlessing")),
    ),
)
STATES = {
    "example_gen": "CACHED",
    "statistics_gen": "COMPLETE",
    "schema_gen": "COMPLETE",
    "transform": "FAILED",
}
DEPENDENCIES = sum(len(n.upstream) for n in TAXI.nodes)


def test_layers_are_longest_paths_with_sources_next_to_their_consumer():
    layer = layers(TAXI, edges(TAXI))
    assert [layer[n.id] for n in TAXI.nodes] == [0, 1, 2, 3, 4, 4, 5, 6]


def test_svg_has_a_box_per_node_and_an_arrow_per_dependency():
    root = ET.fromstring(dag_svg(TAXI, STATES))
    nodes = {g.get("data-node"): g for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert list(nodes) == [n.id for n in TAXI.nodes]
    fills = {node_id: g.find(f"{SVG}rect").get("fill") for node_id, g in nodes.items()}
    assert fills["transform"] == STATE_COLOURS["FAILED"][0]
    assert fills["example_gen"] == STATE_COLOURS["CACHED"][0]
    assert fills["pusher"] == NOT_RUN[0]
    assert [t.text for t in nodes["trainer"].iter(f"{SVG}text")] == ["trainer", "Trainer"]
    edge_groups = [g for g in root.iter(f"{SVG}g") if g.get("class") == "edge"]
    assert len(edge_groups) == DEPENDENCIES == 11
    labels = {(g.get("data-source"), g.get("data-target")): g.find(f"{SVG}text") for g in edge_groups}
    assert labels["transform", "trainer"].text == "Examples, TransformGraph"
    assert labels["latest_blessed", "evaluator"].text == "Model"
    for g in edge_groups:
        assert g.find(f"{SVG}path").get("marker-end") == "url(#mlpipe-dag-arrow)"


def test_edges_end_at_their_target_and_boxes_never_overlap():
    placed = layout(TAXI, {n.id: 120.0 for n in TAXI.nodes})
    for route in placed.routes:
        target = placed.boxes[route.edge.target]
        assert route.points[-1] == (target.x, target.y + target.height / 2)
        assert all(x0 < x1 for (x0, _), (x1, _) in zip(route.points, route.points[1:], strict=False))
    boxes = list(placed.boxes.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert (
                a.x + a.width <= b.x or b.x + b.width <= a.x or a.y + a.height <= b.y or b.y + b.height <= a.y
            )


def test_svg_without_states_has_no_legend():
    svg = dag_svg(TAXI)
    assert 'class="legend"' not in svg and STATE_COLOURS["FAILED"][0] not in svg
    assert 'class="legend"' in dag_svg(TAXI, {})


def test_dag_text_lists_states_and_what_each_node_consumes():
    text = dag_text(TAXI, STATES)
    assert text.startswith("pipeline taxi: 8 nodes\n")
    assert _row(text, "4") == [
        "4",
        "trainer",
        "Trainer",
        "not run",
        "transform (Examples, TransformGraph), schema_gen (Schema)",
    ]
    assert _row(text, "3")[:4] == ["3", "transform", "Transform", "FAILED"]
    assert "STATE" not in dag_text(TAXI)


def test_dag_files_by_extension(tmp_path, monkeypatch):
    render_dag_file(TAXI, STATES, tmp_path / "dag.svg")
    ET.parse(tmp_path / "dag.svg")
    render_dag_file(TAXI, STATES, tmp_path / "dag.html")
    page = (tmp_path / "dag.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count('class="node"') == len(TAXI.nodes)
    _assert_offline(page)
    _assert_offline(dag_html(TAXI, STATES))
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(MlpipeError, match="PNG needs rsvg-convert"):
        render_dag_file(TAXI, STATES, tmp_path / "dag.png")
    with pytest.raises(MlpipeError, match=r"\.svg, \.html or \.png"):
        render_dag_file(TAXI, STATES, tmp_path / "dag.pdf")
    assert not (tmp_path / "dag.png").exists()
