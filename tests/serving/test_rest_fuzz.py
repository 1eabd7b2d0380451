"""Fuzz the REST server in CI, bounded: no 5xx, answers as the OpenAPI description says, still serving.

The long run (>= 10,000 requests) is ``bench/serving_fuzz.py``; this one sends about 1,500
(schemathesis is slow to generate here: it sends ~100 of them, the rest come from our generators).
"""

from __future__ import annotations

import pytest

from tests.serving.rest_fuzz import FuzzReport, fuzz_documents, fuzz_openapi, fuzz_raw, still_answers


@pytest.mark.e2e
def test_fuzzed_rest_server_never_answers_5xx_and_keeps_serving(server):
    report = FuzzReport()
    fuzz_openapi(server.rest_address, examples=5, seed=25, report=report)
    fuzz_documents(server.rest_address, examples=1000, seed=25, report=report)
    fuzz_raw(server.rest_address, examples=400, report=report)
    assert report.requests >= 1000, report.as_dict()
    assert report.server_errors == [], report.server_errors[:5]
    assert report.nonconforming == [], report.nonconforming[:5]
    assert still_answers(server.rest_address)
    # The fuzz reached the models, not only the error paths.
    assert report.statuses[200] >= 100 and report.statuses[400] >= 100, report.as_dict()
