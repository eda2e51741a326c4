"""Ground-truth feedback: the store (TTL, row bound, score once, length checks, label comparison) with a fake clock,
and the endpoint end to end: single and batch forms, unknown and expired ids listed, rejected entries explained,
``modelpilot_feedback_total`` counting correct and incorrect rows, cached predictions scored too, malformed bodies 400.
"""

from __future__ import annotations

import numpy as np
import pytest
from modelpilot_server.feedback import FeedbackStore, parse_feedback, same_label
from modelpilot_server.protocol import ProtocolError

from .conftest import infer_body, metric_value


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_store(max_rows=100, ttl=60.0):
    clock = Clock()
    return FeedbackStore(max_rows, ttl, decode=lambda raw: None, clock=clock), clock


def test_scores_rows_and_forgets_scored_ids():
    store, _ = make_store()
    store.record("a", 3, np.asarray([0, 1, 2]))
    report = store.score([{"id": "a", "truth": [0, 1, 1]}])
    assert (report.scored_rows, report.correct, report.incorrect) == (3, 2, 1)
    again = store.score([{"id": "a", "truth": [0, 1, 1]}])
    assert again.scored_rows == 0 and again.unknown_ids == ["a"]
    assert store.rows == 0


def test_expired_predictions_are_unknown():
    store, clock = make_store(ttl=10)
    store.record("old", 1, np.asarray([1]))
    clock.now += 5
    store.record("new", 1, np.asarray([1]))
    clock.now += 6
    report = store.score([{"id": "old", "truth": [1]}, {"id": "new", "truth": [1]}])
    assert report.unknown_ids == ["old"] and report.correct == 1


def test_row_bound_evicts_oldest_first():
    store, _ = make_store(max_rows=5)
    store.record("a", 2, np.asarray([0, 0]))
    store.record("b", 2, np.asarray([1, 1]))
    store.record("c", 2, np.asarray([2, 2]))
    assert len(store) == 2 and store.rows == 4
    report = store.score([{"id": i, "truth": [0, 0]} for i in ("a", "b", "c")])
    assert report.unknown_ids == ["a"] and report.scored_rows == 4


def test_truth_length_mismatch_is_rejected_and_kept():
    store, _ = make_store()
    store.record("a", 2, np.asarray([0, 1]))
    report = store.score([{"id": "a", "truth": [0]}])
    assert report.scored_rows == 0
    assert report.rejected == [{"id": "a", "error": "truth has 1 labels, the prediction has 2 rows"}]
    assert store.score([{"id": "a", "truth": [0, 1]}]).correct == 2


@pytest.mark.parametrize(
    ("predicted", "actual", "same"),
    [(1, 1.0, True), (1, 2, False), ("pos", "pos", True), ("1", 1, True), (np.int64(2), 2, True), ("a", "b", False)],
)
def test_label_comparison(predicted, actual, same):
    assert same_label(predicted, actual) is same


@pytest.mark.parametrize(
    "document",
    [{}, {"id": 3, "truth": [1]}, {"id": "a"}, {"id": "a", "truth": []}, {"feedback": []}, {"feedback": [{"id": "a"}]}],
)
def test_malformed_feedback_is_refused(document):
    with pytest.raises(ProtocolError) as caught:
        parse_feedback(document)
    assert caught.value.status == 400


async def test_feedback_endpoint_counts_accuracy(client, iris_eval):
    x, y = iris_eval
    first = await (await client.post("/v2/models/iris/infer", json=infer_body(x[:10]))).json()
    second = await (await client.post("/v2/models/iris/infer", json=infer_body(x[10:12], id="mine"))).json()
    predicted = np.asarray(first["outputs"][0]["data"])
    wrong_truth = [(int(v) + 1) % 3 for v in second["outputs"][0]["data"]]

    response = await client.post("/v2/models/iris/feedback", json={"id": first["id"], "truth": y[:10].tolist()})
    assert response.status == 200
    report = await response.json()
    expected_correct = int(np.sum(predicted == y[:10]))
    assert report == {"scored_rows": 10, "correct": expected_correct, "incorrect": 10 - expected_correct,
                      "unknown_ids": [], "rejected": []}

    response = await client.post("/v2/models/iris/feedback", json={"feedback": [
        {"id": second["id"], "truth": wrong_truth},
        {"id": "never-seen", "truth": [1]},
        {"id": first["id"], "truth": y[:10].tolist()},
    ]})
    report = await response.json()
    assert report["scored_rows"] == 2 and report["incorrect"] == 2
    assert report["unknown_ids"] == ["never-seen", first["id"]]

    labels = {"model": "iris", "revision": "rev-a"}
    assert await metric_value(client, "modelpilot_feedback_total", outcome="correct", **labels) == expected_correct
    assert await metric_value(client, "modelpilot_feedback_total", outcome="incorrect", **labels) == \
        10 - expected_correct + 2


async def test_cached_predictions_are_scored(make_client):
    client = await make_client(cache_max_bytes=1 << 20)
    ids = []
    for _ in range(2):
        document = await (await client.post("/v2/models/iris/infer", json=infer_body([[6.7, 3.0, 5.2, 2.3]]))).json()
        ids.append(document["id"])
    assert await metric_value(client, "modelpilot_cache_requests_total", result="hit") == 1
    report = await (await client.post("/v2/models/iris/feedback",
                                      json={"feedback": [{"id": i, "truth": [2]} for i in ids]})).json()
    assert report["correct"] == 2 and report["unknown_ids"] == []


async def test_feedback_errors(client):
    response = await client.post("/v2/models/iris/feedback", data=b"{oops")
    assert response.status == 400 and "malformed JSON" in (await response.json())["error"]
    response = await client.post("/v2/models/iris/feedback", json={"id": "x"})
    assert response.status == 400 and "truth" in (await response.json())["error"]
