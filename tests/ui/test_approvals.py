"""Pending approvals in the dashboard: a person approves a waiting model from the page, and the run
goes on to push it; a foreign form and a stranger are refused."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.components.test_approval import PIPELINE, WAITING
from tests.ui.browser import screenshot, wait_for

pytestmark = pytest.mark.e2e


def _post(url: str, fields: dict[str, str]) -> int:
    try:
        return urllib.request.urlopen(url, data=urllib.parse.urlencode(fields).encode()).status
    except urllib.error.HTTPError as e:
        return e.code


def test_a_waiting_model_is_approved_from_the_page_and_pushed(web, tmp_path):
    from mlpipe.metadata.config import sqlite
    from mlpipe.metadata.queries import artifacts
    from mlpipe.metadata.store import MetadataStore
    from mlpipe.ui.server import start

    env = {
        **os.environ,
        "APPROVAL_ROOT": str(tmp_path / "root"),
        "APPROVAL_SERVING_DIR": str(tmp_path / "serving"),
        "APPROVAL_CALLS_LOG": str(tmp_path / "calls.log"),
        "MLPIPE_METADATA": str(tmp_path / "metadata.sqlite"),
    }
    run = subprocess.Popen(
        [sys.executable, "-m", "mlpipe.cli", "run", str(PIPELINE)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    dashboard = None
    try:
        assert run.stderr is not None
        line = next(line for line in run.stderr if WAITING.search(line))
        run_id = WAITING.search(line).group(2)
        dashboard = start(sqlite(env["MLPIPE_METADATA"]), port=0, background=True)
        web.get(f"{dashboard.url}/approvals")
        [section] = web.find_elements(By.CSS_SELECTOR, "section.approval")
        assert (section.get_attribute("data-run"), section.get_attribute("data-node")) == (run_id, "approval")
        assert "the Evaluator blessed it" in section.text and "may answer: ana, bo" in section.text

        # a form without the page's secret (another site posting through the browser) is refused
        fields = {"run_id": run_id, "node": "approval", "user": "ana", "decision": "approve"}
        assert _post(f"{dashboard.url}/approvals/decide", {**fields, "form_token": "guess"}) == 403
        # a stranger is told who may answer, and nothing is decided
        section.find_element(By.NAME, "user").send_keys("eve")
        section.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        wait_for(lambda: web.find_elements(By.CSS_SELECTOR, "p.error"), what="the refusal")
        assert "'eve' may not answer" in web.find_element(By.CSS_SELECTOR, "p.error").text
        assert not list((tmp_path / "serving").glob("*"))

        [section] = web.find_elements(By.CSS_SELECTOR, "section.approval")
        section.find_element(By.NAME, "user").send_keys("ana")
        section.find_element(By.NAME, "comment").send_keys("looks right")
        screenshot(web, "approvals")
        section.find_element(By.CSS_SELECTOR, "button[value=approve]").click()
        wait_for(lambda: "approved by ana" in web.find_element(By.TAG_NAME, "main").text, what="the answer")
        assert run.wait(timeout=60) == 0
    finally:
        if run.poll() is None:
            run.kill()
        if dashboard is not None:
            dashboard.stop()
    assert len(list((tmp_path / "serving").iterdir())) == 1
    store = MetadataStore(sqlite(env["MLPIPE_METADATA"]))
    [blessing] = [a for a in artifacts(store, "ModelBlessing") if "approval" in a.custom_properties]
    assert (blessing.custom_properties["approved_by"], blessing.custom_properties["comment"]) == (
        "ana",
        "looks right",
    )
    assert Path(tmp_path / "calls.log").read_text() == "make_model\n"
