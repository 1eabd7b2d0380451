"""A run in progress, watched in the browser: node states change without a page reload."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import pytest
from selenium.webdriver.common.by import By

from tests.ui.browser import screenshot, wait_for
from tests.ui.slow_pipeline import create_pipeline

pytestmark = pytest.mark.e2e


def _states(web) -> dict[str, str]:
    rows = web.find_elements(By.CSS_SELECTOR, "table.nodes tbody tr")
    return {
        r.get_attribute("data-node"): r.find_element(By.CSS_SELECTOR, "[data-state]").get_attribute(
            "data-state"
        )
        for r in rows
    }


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url).status
    except urllib.error.HTTPError as e:
        return e.code


def test_running_pipeline_updates_in_place(web, metadata_config, tmp_path):
    from mlpipe.metadata.store import MetadataStore
    from mlpipe.orchestration.local import LocalDagRunner
    from mlpipe.ui.server import start

    release = tmp_path / "release"
    pipeline = create_pipeline(str(tmp_path / "root"), metadata_config, str(release))
    MetadataStore(metadata_config).close()  # an empty store, as after `mlpipe run` created it
    dashboard = start(metadata_config, port=0, background=True, pipeline_ir=pipeline.compile())
    run_id = "live-run-1"
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = LocalDagRunner(progress=False).run(pipeline, run_id=run_id)
        except BaseException as e:  # reported by the assertion below
            outcome["error"] = e

    runner = threading.Thread(target=run)
    runner.start()
    try:
        url = f"{dashboard.url}/runs/{run_id}"
        wait_for(lambda: _status(url) == 200, what="the run to be recorded")
        web.get(url)
        wait_for(lambda: _states(web).get("hold") == "RUNNING", what="hold RUNNING")
        assert _states(web) == {"start": "COMPLETE", "hold": "RUNNING", "finish": "NOT_STARTED"}
        runs_page = urllib.request.urlopen(dashboard.url + "/runs").read().decode()
        assert 'data-live="on"' in runs_page and ">RUNNING<" in runs_page  # the runs list refreshes too
        web.execute_script("window.__notReloaded = true")
        screenshot(web, "run-live")
        release.touch()
        wait_for(
            lambda: _states(web) == {"start": "COMPLETE", "hold": "COMPLETE", "finish": "COMPLETE"},
            timeout=60,
            what="every node COMPLETE on the open page",
        )
        assert web.execute_script("return window.__notReloaded === true")  # same page, updated in place
        assert web.find_element(By.ID, "run-state").text == "COMPLETE"
        assert web.find_element(By.ID, "live").get_attribute("data-live") == "off"  # polling stopped
    finally:
        release.touch()
        runner.join(timeout=120)
        dashboard.stop()
    assert "error" not in outcome, outcome.get("error")
