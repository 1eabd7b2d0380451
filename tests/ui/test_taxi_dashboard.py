"""The dashboard in a real browser over a store made by the taxi pipeline (issue 24 acceptance).

Oracles: the RunResults the runner returned (node states, execution ids), TFMA's own metrics
files (``tfma.load_metrics``) and the data directory the pipeline read.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.ui.browser import NARROW, WIDE, screenshot, set_viewport, wait_for

pytestmark = pytest.mark.e2e

TAXI_NODES = 9


def _rows(web) -> dict[str, str]:
    """node id -> state shown in the run page's node table."""
    rows = web.find_elements(By.CSS_SELECTOR, "table.nodes tbody tr")
    return {
        r.get_attribute("data-node"): r.find_element(By.CSS_SELECTOR, "[data-state]").get_attribute(
            "data-state"
        )
        for r in rows
    }


def test_runs_then_a_run_shows_all_nodes_with_their_states(web, taxi_runs, taxi_ui):
    first, second, _, _ = taxi_runs
    set_viewport(web, *WIDE)
    web.get(taxi_ui.url + "/runs")
    listed = [r.get_attribute("data-run") for r in web.find_elements(By.CSS_SELECTOR, "table.runs tbody tr")]
    assert listed == [second.run_id, first.run_id]  # newest first
    screenshot(web, "runs")

    web.find_element(By.LINK_TEXT, first.run_id).click()
    wait_for(lambda: first.run_id in web.find_element(By.TAG_NAME, "h1").text, what="run page")
    shown = _rows(web)
    assert len(shown) == TAXI_NODES
    assert shown == {node: r.state for node, r in first.results.items()}
    assert set(shown.values()) == {"COMPLETE"}
    # the DAG has a box per node, coloured by state
    boxes = web.find_elements(By.CSS_SELECTOR, "figure.dag g.node")
    assert sorted(b.get_attribute("data-node") for b in boxes) == sorted(first.results)
    trainer = web.find_element(By.CSS_SELECTOR, 'figure.dag g.node[data-node="Trainer"] title')
    tooltip = trainer.get_attribute("textContent")
    assert "COMPLETE" in tooltip and f"why: {first.results['Trainer'].cache_miss}" in tooltip
    screenshot(web, "run")


def test_evaluator_artifact_shows_the_overall_accuracy_tfma_computed(web, taxi_runs, taxi_ui):
    import tensorflow_model_analysis as tfma

    first, _, _, _ = taxi_runs
    (evaluation,) = first.results["Evaluator"].outputs["evaluation"]
    web.get(f"{taxi_ui.url}/runs/{first.run_id}")
    row = web.find_element(By.ID, "node-Evaluator")
    row.find_element(By.PARTIAL_LINK_TEXT, "evaluation (ModelEvaluation").click()
    cell = wait_for(
        lambda: web.find_element(
            By.CSS_SELECTOR, 'tr[data-metric="binary_accuracy"][data-slice="Overall"] td.value'
        ),
        what="the overall accuracy cell",
    )
    shown = float(cell.text)
    (overall,) = [m for m in tfma.load_metrics(evaluation.uri) if not m.slice_key.single_slice_keys]
    oracle = next(
        kv.value.double_value.value
        for kv in overall.metric_keys_and_values
        if kv.key.name == "binary_accuracy"
    )
    assert shown == pytest.approx(oracle, abs=5e-5)
    assert "pass" in web.find_element(By.CSS_SELECTOR, "table.evaluation").text
    screenshot(web, "evaluation")


def test_lineage_of_the_pushed_model_leads_back_to_the_csv_example_gen(web, taxi_runs, taxi_ui):
    first, _, _, data = taxi_runs
    (pushed,) = first.results["Pusher"].outputs["pushed_model"]
    web.get(taxi_ui.url + "/models")
    screenshot(web, "models")
    (evaluation,) = first.results["Evaluator"].outputs["evaluation"]
    row = web.find_element(By.LINK_TEXT, f"PushedModel {pushed.id}").find_element(By.XPATH, "./ancestor::tr")
    assert f"ModelEvaluation {evaluation.id}" in row.text  # the evaluation that blessed it, beside it
    web.find_element(By.LINK_TEXT, f"PushedModel {pushed.id}").click()
    web.find_element(By.LINK_TEXT, "Lineage of this artifact").click()
    wait_for(lambda: "Lineage of" in web.find_element(By.TAG_NAME, "h1").text, what="lineage page")
    screenshot(web, "lineage")
    boxes = {
        b.get_attribute("data-node")
        for b in web.find_elements(By.CSS_SELECTOR, "figure.lineage-graph g.node")
    }
    (examples,) = first.results["CsvExampleGen"].outputs["examples"]
    (model,) = first.results["Trainer"].outputs["model"]
    assert {f"PushedModel {pushed.id}", f"Examples {examples.id}", f"Model {model.id}"} <= boxes
    files = web.find_element(By.CSS_SELECTOR, "table.sources").text
    assert str(data) in files and "module_file content sha256:" in files
    web.find_element(By.CSS_SELECTOR, "section[aria-labelledby=up]").find_element(
        By.LINK_TEXT, "CsvExampleGen"
    ).click()
    heading = wait_for(lambda: web.find_element(By.TAG_NAME, "h1").text, what="execution page")
    assert heading == f"Execution {first.results['CsvExampleGen'].execution_id}: CsvExampleGen"
    assert str(data) in web.find_element(By.TAG_NAME, "main").text  # the CSV directory it read

    # a box of the lineage graph is a link too: the Model's box opens the Model's lineage
    web.back()
    web.find_element(By.CSS_SELECTOR, f'figure.lineage-graph g.node[data-node="Model {model.id}"]').click()
    wait_for(
        lambda: web.find_element(By.TAG_NAME, "h1").text == f"Lineage of Model {model.id}",
        what="model lineage",
    )


def test_a_cached_node_links_to_the_execution_it_reused(web, taxi_runs, taxi_ui):
    first, second, _, _ = taxi_runs
    assert second.results["Trainer"].state == "CACHED"
    web.get(f"{taxi_ui.url}/runs/{second.run_id}")
    assert _rows(web)["Trainer"] == "CACHED"
    web.find_element(By.ID, "node-Trainer").find_element(By.CSS_SELECTOR, "a.reused").click()
    heading = wait_for(lambda: web.find_element(By.TAG_NAME, "h1").text, what="reused execution")
    assert heading == f"Execution {first.results['Trainer'].execution_id}: Trainer"
    assert first.run_id in web.find_element(By.CSS_SELECTOR, "dl.facts").text


def test_keyboard_alone_reaches_a_run(web, taxi_runs, taxi_ui):
    first, second, _, _ = taxi_runs
    web.get(taxi_ui.url + "/runs")
    body = web.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert web.switch_to.active_element.text == "Skip to content"
    for _ in range(30):  # tab on until the newest run's link has the focus, then press Enter
        web.switch_to.active_element.send_keys(Keys.TAB)
        if web.switch_to.active_element.text == second.run_id:
            break
    else:
        raise AssertionError("tabbing never reached the run link")
    outline = web.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    web.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: second.run_id in web.find_element(By.TAG_NAME, "h1").text, what="run page by keyboard")


CONTRAST_SCRIPT = """
function rgb(s) { var m = s.match(/[\\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; }
function lum(c) { return [c.r, c.g, c.b].map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
  .reduce(function (s, v, i) { return s + v * [0.2126, 0.7152, 0.0722][i]; }, 0); }
function bg(el) { for (; el; el = el.parentElement) { var c = rgb(getComputedStyle(el).backgroundColor); if (c.a > 0) return c; } return {r: 255, g: 255, b: 255}; }
var worst = [];
document.querySelectorAll("main *, header *").forEach(function (el) {
  var own = Array.prototype.some.call(el.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); });
  if (!own || el.closest("svg")) return;
  var a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
  var ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  worst.push([ratio, el.tagName + "." + el.className + ": " + el.textContent.trim().slice(0, 30)]);
});
worst.sort(function (x, y) { return x[0] - y[0]; });
return worst.slice(0, 3);
"""


@pytest.mark.parametrize("page", ["/runs", "run"])
def test_text_contrast_is_at_least_wcag_aa(web, taxi_runs, taxi_ui, page):
    path = f"/runs/{taxi_runs[1].run_id}" if page == "run" else page
    web.get(taxi_ui.url + path)
    worst = web.execute_script(CONTRAST_SCRIPT)
    assert worst and worst[0][0] >= 4.5, worst


def test_narrow_window_has_no_page_wide_horizontal_scroll(web, taxi_runs, taxi_ui):
    first, _, _, _ = taxi_runs
    try:
        set_viewport(web, *NARROW)
        for path, name in (("/runs", "runs-narrow"), (f"/runs/{first.run_id}", "run-narrow")):
            web.get(taxi_ui.url + path)
            width = web.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1], f"{path}: page is {width[0]}px wide in a {width[1]}px window"
            screenshot(web, name)
    finally:
        set_viewport(web, *WIDE)


@pytest.mark.parametrize(
    "path", ["/runs/no-such-run", "/artifacts/987654", "/executions/987654", "/artifacts/987654/lineage"]
)
def test_unknown_ids_give_a_404_page_without_a_stack_trace(taxi_ui, path):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(taxi_ui.url + path)
    body = caught.value.read().decode()
    assert caught.value.code == 404
    assert "<h1>Not found</h1>" in body and "Traceback" not in body


def test_statistics_page_shows_each_split_with_histograms_and_compares_side_by_side(web, taxi_runs, taxi_ui):
    first, _, _, _ = taxi_runs
    (examples,) = first.results["CsvExampleGen"].outputs["examples"]
    (statistics,) = first.results["StatisticsGen"].outputs["statistics"]
    (anomalies,) = first.results["ExampleValidator"].outputs["anomalies"]
    web.get(f"{taxi_ui.url}/runs/{first.run_id}")
    web.find_element(By.ID, "node-StatisticsGen").find_element(By.PARTIAL_LINK_TEXT, "statistics (").click()
    text = wait_for(lambda: web.find_element(By.CSS_SELECTOR, ".view").text, what="statistics view")
    for split in ("train", "eval"):  # example counts as ExampleGen recorded them when it split the CSV
        rows = examples.get_custom_property(f"num_rows_{split}")
        assert f"split {split} ({rows} examples): numeric features" in text
    assert web.find_elements(By.CSS_SELECTOR, ".view svg rect")  # histograms drawn
    screenshot(web, "statistics")
    web.find_element(By.CSS_SELECTOR, "form[action='/compare'] select").send_keys(
        f"ExampleAnomalies {anomalies.id}"
    )
    web.find_element(By.CSS_SELECTOR, "form[action='/compare'] button").click()
    sections = wait_for(
        lambda: web.find_elements(By.CSS_SELECTOR, ".side-by-side section"), what="comparison"
    )
    assert [s.get_attribute("aria-label") for s in sections] == [
        f"ExampleStatistics {statistics.id}",
        f"ExampleAnomalies {anomalies.id}",
    ]


def test_models_page_says_which_pushed_version_mlpipe_serve_serves(web, taxi_runs):
    from mlpipe.serving.config import ServedModel
    from mlpipe.serving.server import ModelServer
    from mlpipe.ui.server import start

    first, _, config, _ = taxi_runs
    (pushed,) = first.results["Pusher"].outputs["pushed_model"]
    destination = pushed.get_custom_property("pushed_destination")
    serving_dir, version = os.path.split(destination)
    assert os.listdir(serving_dir) == [version]  # the Pusher's directory is the oracle
    with ModelServer(ServedModel("taxi", serving_dir), poll_wait_seconds=0) as server:
        dashboard = start(
            config, port=0, background=True, serving_url=f"http://127.0.0.1:{server.ports.rest}"
        )
        try:
            web.get(dashboard.url + "/models")
            hint = web.find_element(By.CSS_SELECTOR, "section p.hint").text
            row = web.find_element(By.LINK_TEXT, f"PushedModel {pushed.id}").find_element(
                By.XPATH, "./ancestor::tr"
            )
            cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        finally:
            dashboard.stop()
    assert hint == f"serving now: {version}"
    assert cells[:2] == [version, "serving"]
