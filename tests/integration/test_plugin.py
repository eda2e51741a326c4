"""The kubectl plugin against a real kube-apiserver, run as a user runs it (a separate process, ``--kubeconfig``).

Covered: promote / abort / retry set ``modelpilot.io/action`` to ``"<verb>:<unique id>"`` (a new id every time);
pause / resume flip ``spec.paused``; ``status`` renders the object with a status written through the status
subresource; ``watch --until-done`` follows the object through a real watch stream and exits 0 when the release
ends Healthy; a missing object is a kubectl-style NotFound with exit code 1. The session's operator is stopped for
this module, so nothing consumes the requests: the test sees exactly what the plugin wrote.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import GROUP, PLURAL, VERSION, model_deployment
from kubernetes import client as k8s

pytestmark = pytest.mark.integration

NAME = "iris"
STATUS = {
    "observedGeneration": 1,
    "phase": "Progressing",
    "stableRevision": "5d8f9c",
    "canaryRevision": "7b1e22",
    "currentStep": 2,
    "canaryWeight": 50,
    "replicas": 4,
    "readyReplicas": 4,
    "conditions": [{"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "4 of 4 ready",
                    "lastTransitionTime": "2024-05-01T10:00:00Z", "observedGeneration": 1}],
    "analysis": {"runs": 2, "failures": 0, "consecutiveFailures": 0, "metrics": [
        {"name": "p99-latency", "verdict": "Pass", "value": 0.121, "stableValue": 0.118, "samples": 4210}]},
    "history": [{"revision": "5d8f9c", "outcome": "Promoted", "reason": "all 3 steps passed",
                 "time": "2024-04-30T09:00:00Z"}],
}


def plugin(kubeconfig: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "modelpilot.cli", *args, "--kubeconfig", str(kubeconfig)],
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def operator_stopped(operator):
    """No operator while these tests run (it would act on the objects); running again afterwards."""
    operator.stop()
    try:
        yield
    finally:
        operator.start()


@pytest.fixture
def md(kubectl, crd, namespace: str, operator_stopped) -> str:
    body = model_deployment(NAME, strategy={"canary": {"steps": [{"setWeight": 10}, {"pause": {}},
                                                                  {"setWeight": 50}]}})
    kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(body), check=True)
    return namespace


def get(api: k8s.ApiClient, namespace: str) -> dict:
    return k8s.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, NAME)


def set_status(api: k8s.ApiClient, namespace: str, status: dict) -> None:
    k8s.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, NAME, {"status": status}, _content_type="application/merge-patch+json")


@pytest.mark.parametrize("verb", ["promote", "abort", "retry"])
def test_actions_set_the_annotation_with_a_new_id_each_time(md: str, kubeconfig: Path, kubectl, verb: str):
    values = []
    for _ in range(2):
        result = plugin(kubeconfig, verb, NAME, "-n", md)
        assert result.returncode == 0, result.stderr
        got = kubectl("get", "-n", md, f"{PLURAL}.{GROUP}", NAME, "-o", "json", check=True)
        value = json.loads(got.stdout)["metadata"]["annotations"]["modelpilot.io/action"]
        assert re.fullmatch(rf"{verb}:[0-9a-f]{{12}}", value)
        assert value in result.stdout
        values.append(value)
    assert values[0] != values[1]


def test_pause_and_resume_flip_spec_paused(md: str, kubeconfig: Path, api: k8s.ApiClient):
    assert plugin(kubeconfig, "-n", md, "pause", NAME).returncode == 0  # options before the command work too
    assert get(api, md)["spec"]["paused"] is True
    assert plugin(kubeconfig, "resume", NAME, "-n", md).returncode == 0
    obj = get(api, md)
    assert obj["spec"]["paused"] is False
    assert obj["spec"]["model"]["name"] == NAME  # a merge patch: the rest of the spec is untouched


def test_status_renders_the_object(md: str, kubeconfig: Path, api: k8s.ApiClient):
    set_status(api, md, STATUS)
    result = plugin(kubeconfig, "status", NAME, "-n", md)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert re.search(r"^Phase:\s+Progressing$", out, re.M)
    assert re.search(r"^Step:\s+3/3 \(setWeight 50\)$", out, re.M)
    assert re.search(r"^Weight:\s+stable 50%, canary 50%$", out, re.M)
    assert re.search(r"^\s+p99-latency\s+Pass\s+0\.121\s+0\.118\s+4210$", out, re.M)
    assert re.search(r"^\s+5d8f9c\s+Promoted\s+all 3 steps passed", out, re.M)


def test_watch_follows_the_release_until_it_ends(md: str, kubeconfig: Path, api: k8s.ApiClient):
    set_status(api, md, STATUS)
    args = [sys.executable, "-m", "modelpilot.cli", "watch", NAME, "-n", md, "--until-done", "--timeout", "60",
            "--kubeconfig", str(kubeconfig)]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "Progressing  step 3/3 (setWeight 50)  weight 50%" in first
        set_status(api, md, {"phase": "Healthy", "canaryRevision": None, "canaryWeight": 0, "currentStep": None,
                             "stableRevision": "7b1e22",
                             "history": [{"revision": "7b1e22", "outcome": "Promoted", "reason": "all 3 steps passed",
                                          "time": "2024-05-01T10:10:00Z"}, *STATUS["history"]]})
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Healthy  stable 7b1e22" in out
    assert "release of 7b1e22 finished: Promoted" in out


def test_watch_ends_at_its_timeout(md: str, kubeconfig: Path, api: k8s.ApiClient):
    set_status(api, md, STATUS)
    result = plugin(kubeconfig, "watch", NAME, "-n", md, "--until-done", "--timeout", "3", timeout=30)
    assert result.returncode == 1 and "timed out after 3 s" in result.stderr
    assert result.stdout.count("\n") == 1  # the state at the start, and no change since


def test_missing_object_is_not_found(crd, namespace: str, kubeconfig: Path):
    result = plugin(kubeconfig, "promote", "nope", "-n", namespace)
    assert result.returncode == 1
    assert f'modeldeployments.modelpilot.io "nope" not found in namespace "{namespace}"' in result.stderr
