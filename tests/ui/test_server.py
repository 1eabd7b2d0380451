"""The dashboard server without a browser: start-up errors, access control, read-only store,
pagination and speed on 1,000 runs, the run URL printed by ``mlpipe run``, the notebook link."""

from __future__ import annotations

import http.cookiejar
import os
import re
import sqlite3
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mlpipe.cli import main
from mlpipe.errors import MlpipeError
from mlpipe.metadata.config import sqlite
from mlpipe.metadata.store import MetadataStore
from mlpipe.ui.server import start

REPO = Path(__file__).parents[2]
sys.path.insert(0, str(REPO / "bench"))

from ui import make_store  # noqa: E402  (bench/ui.py builds the big store for the benchmark too)


def _get(url: str, opener: urllib.request.OpenerDirector | None = None) -> tuple[int, str]:
    try:
        with (opener or urllib.request.build_opener()).open(url) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def gated_store(tmp_path):
    """A real store with one run of the gated pipeline (4 nodes, one SKIPPED by a Cond)."""
    from mlpipe.orchestration.local import LocalDagRunner
    from tests.orchestration.gated import create_pipeline

    config = sqlite(tmp_path / "metadata.sqlite")
    result = LocalDagRunner(progress=False).run(create_pipeline(str(tmp_path / "root"), config, rows=4))
    return config, result


@pytest.mark.parametrize(
    "content, expected",
    [
        (None, "no metadata store at"),
        (b"this is not a database, just text" * 200, "is not a readable ML Metadata store"),
        ("empty sqlite", "is not an ML Metadata store (no MLMDEnv table)"),
    ],
)
def test_missing_or_corrupted_store_is_a_clear_error_at_start(tmp_path, capsys, content, expected):
    path = tmp_path / "metadata.sqlite"
    if content == "empty sqlite":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE something (x)")
    elif content is not None:
        path.write_bytes(content)
    assert main(["ui", "--metadata", str(path), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err and "Traceback" not in err
    assert not os.path.exists(f"{path}.ui.json")


def test_the_store_is_opened_read_only(gated_store):
    config, result = gated_store
    before = os.stat(config.path).st_mtime_ns
    dashboard = start(config, port=0, background=True)
    try:
        for path in ("/runs", f"/runs/{result.run_id}", "/artifacts", "/models"):
            assert _get(dashboard.url + path)[0] == 200
        with pytest.raises(Exception, match="(?i)read.?only|readonly"):
            dashboard.store.db.mlmd.put_execution_type(dashboard.store._pb.ExecutionType(name="Intruder"))
    finally:
        dashboard.stop()
    assert os.stat(config.path).st_mtime_ns == before


def test_skipped_node_shows_the_deciding_value(gated_store):
    config, result = gated_store
    dashboard = start(config, port=0, background=True)
    try:
        status, html = _get(f"{dashboard.url}/runs/{result.run_id}")
    finally:
        dashboard.stop()
    assert status == 200
    row = re.search(r'<tr id="node-total".*?</tr>', html, re.S).group(0)
    assert 'data-state="SKIPPED"' in row
    assert result.results["total"].skip_reason in row.replace("&#34;", '"').replace("&#39;", "'")


def test_binding_beyond_loopback_needs_a_token(gated_store):
    config, _ = gated_store
    with pytest.raises(MlpipeError, match="token"):
        start(config, host="0.0.0.0", port=0)
    dashboard = start(config, host="0.0.0.0", port=0, token="s3cret", background=True)
    try:
        url = dashboard.url.replace("0.0.0.0", "127.0.0.1")
        assert _get(url + "/runs")[0] == 401
        assert _get(url + "/runs?token=wrong")[0] == 401
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        status, html = _get(url + "/runs?token=s3cret", browser)  # sets a cookie, redirects to /runs
        assert status == 200 and "<h1>Runs</h1>" in html
        assert _get(url + "/runs", browser)[0] == 200  # the cookie is enough from then on
    finally:
        dashboard.stop()


def test_a_thousand_runs_first_page_under_300ms_and_pages_cover_every_run():
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        path = os.path.join(tmp, "metadata.sqlite")
        run_ids = make_store(path, runs=1000, nodes=1)
        dashboard = start(sqlite(path), port=0, background=True)
        try:
            _get(dashboard.url + "/runs")  # warm-up: first connection, template compilation
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                status, html = _get(dashboard.url + "/runs")
                samples.append(time.perf_counter() - started)
            assert status == 200
            assert sorted(samples)[2] < 0.3, samples
            seen, pages, next_url = [], 0, "/runs"
            while next_url:
                status, html = _get(dashboard.url + next_url)
                assert status == 200
                seen += re.findall(r'<tr data-run="([^"]+)"', html)
                pages += 1
                found = re.search(r'rel="next" href="([^"]+)"', html)
                next_url = found.group(1).replace("&amp;", "&") if found else None
        finally:
            dashboard.stop()
    assert seen == run_ids[::-1]  # every run once, newest first
    assert pages == 40


def test_filters_by_pipeline_and_state(gated_store):
    config, result = gated_store
    dashboard = start(config, port=0, background=True)
    try:
        listed = {}
        for query in (
            "pipeline=gated",
            "pipeline=gated&state=COMPLETE",
            "state=FAILED",
            "pipeline=it%27s%5C",
        ):
            status, html = _get(f"{dashboard.url}/runs?{query}")
            assert status == 200
            listed[query] = re.findall(r'<tr data-run="([^"]+)"', html)
    finally:
        dashboard.stop()
    assert listed == {
        "pipeline=gated": [result.run_id],
        "pipeline=gated&state=COMPLETE": [result.run_id],
        "state=FAILED": [],
        "pipeline=it%27s%5C": [],  # a quote and a backslash are data, not filter syntax
    }


def _pipeline_file(tmp_path: Path) -> Path:
    file = tmp_path / "gated_pipeline.py"
    file.write_text(
        f"import sys\nsys.path.insert(0, {str(REPO)!r})\n"
        "from mlpipe.metadata.config import sqlite\n"
        "from tests.orchestration.gated import create_pipeline as make\n"
        f"pipeline = make({str(tmp_path / 'root')!r}, sqlite({str(tmp_path / 'metadata.sqlite')!r}))\n"
    )
    return file


def test_mlpipe_run_prints_the_run_url_when_a_dashboard_serves_the_store(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLPIPE_METADATA", raising=False)
    file = _pipeline_file(tmp_path)
    assert main(["run", str(file)]) == 0
    assert "http://" not in capsys.readouterr().out  # no dashboard yet: no URL
    dashboard = start(sqlite(tmp_path / "metadata.sqlite"), port=0, background=True)
    try:
        assert main(["run", str(file)]) == 0
        out = capsys.readouterr().out
        (url,) = re.findall(r"http://\S+", out)
        assert url.startswith(dashboard.url + "/runs/")
        run_id = url.rsplit("/", 1)[1]
        assert f"run {run_id}:" in out
        status, html = _get(url)
        assert status == 200 and run_id in html
    finally:
        dashboard.stop()
    assert not os.path.exists(tmp_path / "metadata.sqlite.ui.json")  # withdrawn on stop


def test_interactive_context_links_to_its_run(tmp_path):
    from mlpipe.orchestration.interactive import InteractiveContext
    from tests.orchestration.gated import measure

    ctx = InteractiveContext(pipeline_root=str(tmp_path / "root"))
    ctx.run(measure(rows=3))
    shown = ctx.ui()
    html = getattr(shown, "data", shown)
    try:
        (url,) = re.findall(r'href="([^"]+)"', html)
        assert url.endswith(f"/runs/{ctx.run_id}")
        status, page = _get(url)
        assert status == 200 and 'data-node="measure"' in page
        assert "open in mlpipe ui" in str(
            getattr(ctx.show(ctx.results["measure"].outputs["n"][0]), "data", "")
        )
    finally:
        ctx._dashboard.stop()


def test_loopback_dashboard_refuses_foreign_host_names(gated_store):
    """DNS rebinding: a page of evil.example resolving to 127.0.0.1 must not read the dashboard."""
    import http.client

    config, _ = gated_store
    dashboard = start(config, port=0, background=True)
    try:
        port = int(dashboard.url.rsplit(":", 1)[1])
        answers = {}
        for host in ("evil.example", f"evil.example:{port}", f"localhost:{port}", f"127.0.0.1:{port}"):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/runs", headers={"Host": host})
            answers[host] = connection.getresponse().status
            connection.close()
    finally:
        dashboard.stop()
    assert answers == {
        "evil.example": 400,
        f"evil.example:{port}": 400,
        f"localhost:{port}": 200,
        f"127.0.0.1:{port}": 200,
    }


def test_the_dashboard_loads_no_tensorflow_or_beam(gated_store):
    """Pages are protobuf reads: the dashboard starts in well under a second, not TensorFlow's 9 s."""
    import subprocess

    config, result = gated_store
    code = (
        "import sys, urllib.request\n"
        "from mlpipe.metadata.config import sqlite\n"
        "from mlpipe.ui.server import start\n"
        f"d = start(sqlite({config.path!r}), port=0, background=True)\n"
        f"for path in ('/runs', '/runs/{result.run_id}', '/artifacts', '/models'):\n"
        "    urllib.request.urlopen(d.url + path).read()\n"
        "for a in ('1', '2'):\n"
        "    urllib.request.urlopen(d.url + '/artifacts/' + a).read()\n"
        "    urllib.request.urlopen(d.url + '/artifacts/' + a + '/lineage').read()\n"
        "d.stop()\n"
        "print(sorted(m for m in ('tensorflow', 'apache_beam', 'tensorflow_model_analysis') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_artifact_pages_list_every_published_artifact_once_newest_first(gated_store):
    from mlpipe.metadata.queries import artifacts
    from mlpipe.ui.reads import artifacts_page
    from mlpipe.ui.store import ReadOnlyStore

    config, _ = gated_store
    store = ReadOnlyStore(config)
    try:
        expected = [a.id for a in artifacts(store)]  # the CLI's query: every LIVE artifact
        seen, before = [], None
        while True:
            page = artifacts_page(store, before=before, size=2)
            seen += [a.id for a in page.artifacts]
            if page.before is None:
                break
            before = page.before
        integers = [a.id for a in artifacts_page(store, "Integer").artifacts]
    finally:
        store.close()
    assert len(expected) >= 3 and seen == expected
    assert integers == [a.id for a in artifacts(MetadataStore(config), "Integer")]
