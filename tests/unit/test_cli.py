"""The plugin's pure parts on hand-written objects: ``status`` output, ``watch`` lines and when a release is done, the
action value, and the argument parser (connection options before or after the command, as kubectl accepts them)."""

from __future__ import annotations

import re

import pytest
from modelpilot import cli

SPEC = {
    "model": {"name": "iris", "version": "2", "uri": "file:///m/iris-2.joblib", "format": "sklearn"},
    "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "30s"}}, {"setWeight": 50},
                                      {"pause": {}}, {"analysis": {}}]}},
}
PROGRESSING = {
    "metadata": {"name": "iris", "namespace": "ml", "generation": 4,
                 "annotations": {"modelpilot.io/action": "promote:abc123"}},
    "spec": SPEC,
    "status": {
        "observedGeneration": 4,
        "phase": "Progressing",
        "stableRevision": "5d8f9c",
        "canaryRevision": "7b1e22",
        "currentStep": 1,
        "canaryWeight": 10,
        "replicas": 4,
        "readyReplicas": 4,
        "lastAction": "promote:abc123",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "AllReplicasReady", "message": "4 of 4 ready",
             "lastTransitionTime": "2024-05-01T10:00:00Z"},
            {"type": "Progressing", "status": "True", "reason": "CanaryStep", "message": "step 2 of 5",
             "lastTransitionTime": "2024-05-01T10:01:00Z"},
        ],
        "analysis": {
            "runs": 3, "failures": 1, "consecutiveFailures": 1, "lastRunAt": "2024-05-01T10:02:00Z",
            "metrics": [
                {"name": "p99-latency", "verdict": "Pass", "value": 0.12134, "stableValue": 0.118, "samples": 4210},
                {"name": "errors", "verdict": "Fail", "value": 0.05, "stableValue": 0.001, "samples": 4210,
                 "message": "0.05 > max 0.01"},
                {"name": "accuracy", "verdict": "Inconclusive", "samples": 12},
            ],
        },
        "history": [{"revision": "5d8f9c", "outcome": "Promoted", "reason": "all 5 steps passed",
                     "time": "2024-04-30T09:00:00Z"}],
    },
}


def with_status(base=PROGRESSING, metadata=None, spec=None, **status):
    return {"metadata": {**base["metadata"], **(metadata or {})}, "spec": {**base["spec"], **(spec or {})},
            "status": {**base["status"], **status}}


def field(text: str, name: str) -> str:
    match = re.search(rf"^{name}:\s+(.*)$", text, re.MULTILINE)
    assert match, f"no {name!r} in\n{text}"
    return match.group(1)


def test_status_of_a_canary_in_progress():
    text = cli.render_status(PROGRESSING)
    expected = {
        "Name": "iris", "Namespace": "ml", "Phase": "Progressing", "Paused": "no", "Strategy": "canary",
        "Step": "2/5 (pause 30s)", "Stable": "5d8f9c", "Canary": "7b1e22", "Weight": "stable 90%, canary 10%",
        "Replicas": "4 ready of 4", "Action": "promote:abc123 (consumed)",
    }
    assert {k: field(text, k) for k in expected} == expected
    assert "Analysis: 3 runs, 1 failed (1 in a row), last at 2024-05-01T10:02:00Z" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.strip().startswith("METRIC"))
    assert header.split() == ["METRIC", "VERDICT", "VALUE", "STABLE", "SAMPLES", "MESSAGE"]
    rows = {line.split()[0]: line.split() for line in lines[lines.index(header) + 1:lines.index(header) + 4]}
    assert rows["p99-latency"] == ["p99-latency", "Pass", "0.1213", "0.118", "4210"]
    assert rows["errors"] == ["errors", "Fail", "0.05", "0.001", "4210", "0.05", ">", "max", "0.01"]
    assert rows["accuracy"] == ["accuracy", "Inconclusive", "-", "-", "12"]
    assert re.search(r"^\s+Ready\s+True\s+AllReplicasReady\s+2024-05-01T10:00:00Z\s+4 of 4 ready$", text, re.M)
    assert re.search(r"^\s+5d8f9c\s+Promoted\s+all 5 steps passed\s+2024-04-30T09:00:00Z$", text, re.M)
    # columns line up: every metric row starts its VERDICT where the header does
    start = header.index("VERDICT")
    for line in lines[lines.index(header) + 1:lines.index(header) + 4]:
        assert line[start - 1] == " " and line[start] != " "


STEPS = [
    ("first step", SPEC, 0, "1/5 (setWeight 10)"),
    ("pause until promoted", SPEC, 3, "4/5 (pause (until promoted))"),
    ("analysis step", SPEC, 4, "5/5 (analysis)"),
    ("past the last step", SPEC, 5, "5/5 (all steps done)"),
    ("no step yet", SPEC, None, "-"),
    ("blue-green preview", {"strategy": {"blueGreen": {}}}, 1, "2/3 (preview ready)"),
    ("blue-green switched", {"strategy": {"blueGreen": {}}}, 2, "3/3 (switched)"),
    ("no strategy", {}, 0, "-"),
]


@pytest.mark.parametrize("spec, index, expected", [c[1:] for c in STEPS], ids=[c[0] for c in STEPS])
def test_step_text(spec, index, expected):
    assert cli.step_text(spec, {"currentStep": index}) == expected


def test_status_at_rest_pending_action_and_no_status_yet():
    healthy = with_status(canaryRevision=None, canaryWeight=0, currentStep=None, phase="Healthy", analysis=None,
                          lastAction=None, spec={"paused": True}, metadata={"annotations": {}})
    text = cli.render_status(healthy)
    assert field(text, "Weight") == "stable 100%" and field(text, "Canary") == "-" and field(text, "Step") == "-"
    assert field(text, "Paused") == "yes" and "Action:" not in text and "Analysis" not in text

    pending = with_status(metadata={"annotations": {"modelpilot.io/action": "abort:ff01"}})
    assert field(cli.render_status(pending), "Action") == "abort:ff01 (pending), last consumed promote:abc123"

    fresh = {"metadata": {"name": "iris", "namespace": "ml", "generation": 1}, "spec": SPEC}
    text = cli.render_status(fresh)
    assert field(text, "Phase") == "Unknown" and field(text, "Replicas") == "0 ready of 0"
    assert "Conditions" not in text and "History" not in text

    stale = with_status(metadata={"generation": 5})
    assert field(cli.render_status(stale), "Note") == "the operator has not seen the latest spec yet"


def test_watch_line_and_what_counts_as_a_change():
    assert cli.watch_line(PROGRESSING) == ("Progressing  step 2/5 (pause 30s)  weight 10%  canary 7b1e22  "
                                           "stable 5d8f9c  p99-latency=Pass errors=Fail accuracy=Inconclusive")
    assert cli.watch_line(with_status(phase="Healthy", canaryRevision=None)) == "Healthy  stable 5d8f9c"
    key = cli.watch_key(PROGRESSING)
    assert cli.watch_key(with_status(readyReplicas=3, lastAction="x")) == key  # not reported
    assert cli.watch_key(with_status(canaryWeight=50)) != key
    assert cli.watch_key(with_status(currentStep=2)) != key
    assert cli.watch_key(with_status(phase="Degraded")) != key
    verdicts = [dict(m, verdict="Pass") for m in PROGRESSING["status"]["analysis"]["metrics"]]
    assert cli.watch_key(with_status(analysis={"metrics": verdicts})) != key


DONE = [
    ("in progress", {}, {}, False),
    ("promoted", {"canaryRevision": None, "phase": "Healthy"}, {}, True),
    ("rolled back", {"canaryRevision": None, "phase": "Degraded"}, {}, True),
    ("paused, nothing in progress", {"canaryRevision": None, "phase": "Paused"}, {}, False),
    ("healthy but the new spec not seen yet", {"canaryRevision": None, "phase": "Healthy"}, {"generation": 5}, False),
    ("no status yet", {"canaryRevision": None, "phase": None, "observedGeneration": None}, {}, False),
]


@pytest.mark.parametrize("status, metadata, expected", [c[1:] for c in DONE], ids=[c[0] for c in DONE])
def test_release_done(status, metadata, expected):
    assert cli.release_done(with_status(metadata=metadata, **status)) is expected


def test_outcome_line():
    assert cli.outcome(PROGRESSING) == "release of 5d8f9c finished: Promoted (all 5 steps passed)"
    assert cli.outcome(with_status(history=[], phase="Healthy")) == "no release in progress: Healthy"


def test_action_value():
    assert cli.action_value("abort", "42") == "abort:42"
    first, second = cli.action_value("promote"), cli.action_value("promote")
    assert re.fullmatch(r"promote:[0-9a-f]{12}", first) and first != second
    with pytest.raises(ValueError):
        cli.action_value("delete")


PARSE = [
    (["status", "iris", "-n", "ml"], {"command": "status", "name": "iris", "namespace": "ml"}),
    (["-n", "ml", "--context", "dev", "promote", "iris"], {"command": "promote", "namespace": "ml", "context": "dev"}),
    (["pause", "iris", "--kubeconfig", "k.yaml"], {"command": "pause", "kubeconfig": "k.yaml"}),
    (["watch", "iris", "--until-done", "--timeout", "30"], {"command": "watch", "until_done": True, "timeout": 30.0}),
    (["watch", "iris"], {"until_done": False, "timeout": 600.0}),
]


@pytest.mark.parametrize("argv, expected", PARSE, ids=[" ".join(a) for a, _ in PARSE])
def test_parser(argv, expected):
    args = vars(cli.build_parser().parse_args(argv))
    assert {k: args.get(k) for k in expected} == expected


def test_parser_rejects_unknown_commands(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["delete", "iris"])
