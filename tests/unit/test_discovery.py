import pytest
from modelpilot.kube.discovery import pick_autoscaling_version


@pytest.mark.parametrize(
    "served, want",
    [
        (["v1", "v2", "v2beta1", "v2beta2"], "autoscaling/v2"),  # 1.23 - 1.25
        (["v1", "v2"], "autoscaling/v2"),  # 1.26+
        (["v1", "v2beta1", "v2beta2"], "autoscaling/v2beta2"),  # 1.12 - 1.22
    ],
)
def test_prefers_v2(served, want):
    assert pick_autoscaling_version(served) == want


def test_no_resource_metrics_api_is_an_error():
    with pytest.raises(RuntimeError, match="autoscaling"):
        pick_autoscaling_version(["v1"])
