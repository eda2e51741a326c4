"""The metric contract: names, types and labels that the operator's PromQL relies on; children counting the right
things (status codes, batch sizes, in-flight back to zero); one registry per app; ``--metrics false`` removes
``/metrics`` and keeps serving.
"""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from .conftest import infer_body, metric_value

CONTRACT = {
    "modelpilot_request_duration_seconds": "histogram",
    "modelpilot_requests_total": "counter",
    "modelpilot_feedback_total": "counter",
    "modelpilot_batch_size": "histogram",
    "modelpilot_cache_requests_total": "counter",
    "modelpilot_inflight_requests": "gauge",
}


async def test_contract_names_types_and_labels(client):
    await client.post("/v2/models/iris/infer", json=infer_body([[5.1, 3.5, 1.4, 0.2]]))
    text = await (await client.get("/metrics")).text()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    for name, kind in CONTRACT.items():
        family = families[name.removesuffix("_total")]
        assert family.type == kind, name
        for sample in family.samples:
            assert sample.labels["model"] == "iris" and sample.labels["revision"] == "rev-a", sample


async def test_requests_counted_by_endpoint_and_code(client):
    for _ in range(3):
        await client.post("/v2/models/iris/infer", json=infer_body([[5.1, 3.5, 1.4, 0.2]]))
    await client.post("/v2/models/iris/infer", data=b"{bad")
    await client.post("/v2/models/iris/versions/1/infer", json=infer_body([[5.1, 3.5, 1.4, 0.2]]))
    await client.get("/v2/models/nope")

    assert await metric_value(client, "modelpilot_requests_total", endpoint="infer", code="200") == 4
    assert await metric_value(client, "modelpilot_requests_total", endpoint="infer", code="400") == 1
    assert await metric_value(client, "modelpilot_requests_total", endpoint="model_metadata", code="404") == 1
    assert await metric_value(client, "modelpilot_request_duration_seconds_count", endpoint="infer") == 5
    assert await metric_value(client, "modelpilot_batch_size_sum") == 4
    assert await metric_value(client, "modelpilot_inflight_requests") == 1  # the /metrics request itself


async def test_each_app_has_its_own_registry(make_client):
    one = await make_client(revision="one")
    two = await make_client(revision="two")
    await one.post("/v2/models/iris/infer", json=infer_body([[5.1, 3.5, 1.4, 0.2]]))
    assert await metric_value(one, "modelpilot_requests_total", endpoint="infer", code="200", revision="one") == 1
    assert await metric_value(two, "modelpilot_requests_total", endpoint="infer", code="200", revision="two") == 0
    assert "revision=\"one\"" not in await (await two.get("/metrics")).text()


async def test_metrics_can_be_switched_off(make_client):
    client = await make_client(metrics=False)
    assert (await client.get("/metrics")).status == 404
    response = await client.post("/v2/models/iris/infer", json=infer_body([[5.1, 3.5, 1.4, 0.2]]))
    assert response.status == 200
