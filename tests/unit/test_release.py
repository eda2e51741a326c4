"""The release state machine, driven pass by pass with no I/O: a small simulator plays the cluster (Deployments
become available at their size when told) and the clock; analysis results are given per pass.

Cases: healthy canary promoted through every step; rollback on a failed run (weight 0, stable alone behind the
Service, canary at 0, history, Degraded/RolledBack); failureLimit and consecutiveFailureLimit; holds on inconclusive
runs; a regression found during a pause; indefinite pause waits for promote; abort and retry; actions consumed once;
spec.paused holds; a spec change supersedes the canary; restart from status resumes the same step with the same
counts; blue-green promoted, blocked by pre-promotion analysis, switched back by post-promotion analysis; first
revision goes straight to stable; old revision removed after the scale-down delay.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from modelpilot.api import ModelDeploymentSpec, Verdict
from modelpilot.rollout.release import Action, Release, analysis_due, decide
from modelpilot.rollout.state import Observed, RevisionState
from modelpilot.rollout.verdicts import CheckResult

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
MODEL = {"name": "m", "version": "1", "uri": "file:///m", "format": "sklearn"}
ANALYSIS = {"interval": "10s", "failureLimit": 2, "metrics": [{"name": "p99", "latency": {"max": "250ms"}}]}


def canary_spec(steps=None, **extra):
    steps = steps or [{"setWeight": 20}, {"pause": {"duration": "30s"}}, {"setWeight": 50}, {"analysis": {}}]
    return ModelDeploymentSpec.model_validate({"model": MODEL, "replicas": 10, "analysis": ANALYSIS,
                                               "strategy": {"canary": {"steps": steps, "scaleDownDelaySeconds": 30}},
                                               **extra})


def bg_spec(**bg):
    return ModelDeploymentSpec.model_validate({"model": MODEL, "replicas": 4,
                                               "strategy": {"blueGreen": {"scaleDownDelaySeconds": 0, **bg}}})


PASS = [CheckResult("p99", Verdict.Pass, 0.1, samples=500)]
FAIL = [CheckResult("p99", Verdict.Fail, 0.4, samples=500, message="p99 0.4s > max 250ms")]
HOLD = [CheckResult("p99", Verdict.Inconclusive, 0.4, samples=5)]


class Sim:
    """The cluster and the clock around ``decide``."""

    def __init__(self, spec, stable="s", now=T0):
        self.spec = spec
        self.now = now
        self.observed = {stable: RevisionState(stable, spec.replicas, spec.replicas, spec.replicas, spec.replicas,
                                               spec.replicas, True)}
        self.release = Release(stable=stable)
        self.auto_ready = True
        self.last = None

    def step(self, desired="c", *, results=None, action=None, seconds=0):
        self.now += timedelta(seconds=seconds)
        d = decide(spec=self.spec, desired=desired, observed=Observed(dict(self.observed)), release=self.release,
                   now=self.now, action=action, results=results)
        for rev, n in d.replicas.items():
            ready = n if self.auto_ready else 0
            self.observed[rev] = RevisionState(rev, n, n, ready, n, ready, self.auto_ready or n == 0)
        for rev in d.remove:
            self.observed.pop(rev, None)
        self.release, self.last = d.release, d
        return d

    def due(self):
        return analysis_due(self.spec, self.release, self.now)


def test_healthy_canary_is_promoted_through_every_step():
    sim = Sim(canary_spec())
    d = sim.step()  # release starts at step 0 (setWeight 20); canary pods not yet there
    assert (d.release.canary, d.release.step, d.replicas) == ("c", 0, {"s": 8, "c": 2})
    assert d.service_revision == "s"  # no traffic on the canary before its pods are ready
    d = sim.step()  # canary available: step 0 done, now pausing 30 s
    assert (d.release.step, d.release.weight, d.service_revision) == (1, 20, None)
    assert d.requeue_after is not None and d.requeue_after <= 10
    d = sim.step(seconds=10, results=PASS)
    assert d.release.step == 1 and d.release.runs == 1
    d = sim.step(seconds=21)  # pause over
    assert d.release.step == 2 and d.replicas == {"s": 5, "c": 5}
    d = sim.step()  # 50 % ready -> analysis step waits for a passing run after it started
    assert d.release.step == 3 and d.release.step_verdict is None
    d = sim.step(seconds=10, results=PASS)
    assert d.release.stable == "c" and d.release.canary is None
    assert d.service_revision == "c" and d.release.history[0]["outcome"] == "Promoted"
    assert d.phase == "Healthy" and d.remove == ()  # the old revision stays (without traffic) for the delay
    d = sim.step(seconds=31)
    assert d.remove == ("s",)


def test_failed_run_rolls_back_in_the_same_pass():
    sim = Sim(canary_spec())
    sim.step()
    sim.step()
    d = sim.step(seconds=10, results=FAIL)
    assert d.release.canary == "c" and d.release.failures == 1  # failureLimit is 2
    assert any(e[1] == "AnalysisFailed" for e in d.events)
    d = sim.step(seconds=10, results=FAIL)
    assert d.release.canary is None and d.release.rolled_back == "c"
    assert d.replicas == {"s": 10, "c": 0} and d.service_revision == "s" and d.router_weight == 0
    assert d.phase == "Degraded" and d.degraded[:2] == ("True", "RolledBack")
    assert d.release.history[0]["outcome"] == "RolledBack" and "p99" in d.release.history[0]["reason"]
    # The same revision is not released again...
    d = sim.step(seconds=60)
    assert d.release.canary is None and d.replicas["c"] == 0 and d.phase == "Degraded"
    # ...until a retry, which starts over with fresh counts.
    d = sim.step(action=Action.parse("retry:1", None))
    assert d.release.canary == "c" and d.release.step == 0 and d.release.failures == 0


def test_consecutive_failure_limit():
    spec = canary_spec()
    spec.analysis.failure_limit = 5
    spec.analysis.consecutive_failure_limit = 2
    sim = Sim(spec)
    sim.step()
    sim.step()
    assert sim.step(seconds=10, results=FAIL).release.consecutive == 1
    assert sim.step(seconds=10, results=PASS).release.consecutive == 0
    sim.step(seconds=10, results=FAIL)
    assert sim.step(seconds=10, results=FAIL).release.rolled_back == "c"


def test_inconclusive_runs_hold_without_counting():
    sim = Sim(canary_spec([{"setWeight": 20}, {"analysis": {}}]))
    sim.step()
    sim.step()
    for _ in range(5):
        d = sim.step(seconds=10, results=HOLD)
        assert d.release.canary == "c" and d.release.failures == 0 and d.release.step == 1
    assert sim.step(seconds=10, results=PASS).release.stable == "c"


def test_regression_during_an_indefinite_pause_still_rolls_back():
    sim = Sim(canary_spec([{"setWeight": 20}, {"pause": {}}]))
    sim.step()
    d = sim.step()
    assert d.phase == "Paused" and d.release.step == 1
    assert sim.due() is None
    sim.now += timedelta(seconds=10)
    assert sim.due() is not None  # background analysis runs during a pause
    sim.step(results=FAIL)
    assert sim.step(seconds=10, results=FAIL).release.rolled_back == "c"


def test_promote_moves_past_an_indefinite_pause_once():
    sim = Sim(canary_spec([{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}, {"pause": {}}]))
    sim.step()
    sim.step()
    action = Action.parse("promote:a", sim.release.last_action)
    d = sim.step(action=action)
    assert d.release.step == 2 and d.release.last_action == "promote:a"
    d = sim.step()
    assert d.release.step == 3 and d.phase == "Paused"
    # The same annotation seen again is not a second promote.
    assert Action.parse("promote:a", d.release.last_action) is None
    d = sim.step(action=Action.parse("promote:b", d.release.last_action))
    assert d.release.stable == "c"


def test_abort_rolls_back_at_once():
    sim = Sim(canary_spec())
    sim.step()
    d = sim.step(action=Action.parse("abort:1", None))
    assert d.release.rolled_back == "c" and d.release.history[0]["outcome"] == "Aborted"
    assert d.replicas["c"] == 0 and d.service_revision == "s"


def test_spec_paused_holds_the_step_but_not_the_analysis():
    spec = canary_spec()
    sim = Sim(spec)
    sim.step()
    sim.step()
    spec.paused = True
    d = sim.step(seconds=40, results=PASS)
    assert d.release.step == 1 and d.phase == "Paused" and d.release.runs == 1
    spec.paused = False
    assert sim.step().release.step == 2


def test_spec_change_supersedes_the_canary():
    sim = Sim(canary_spec())
    sim.step()
    sim.step()
    d = sim.step(desired="c2")
    assert d.release.canary == "c2" and d.release.step == 0 and "c" in d.remove
    assert d.release.history[0] == {"revision": "c", "outcome": "Superseded", "reason": "spec changed to revision c2",
                                    "time": d.release.history[0]["time"]}


def test_restart_from_status_resumes_the_same_step_with_the_same_counts():
    sim = Sim(canary_spec())
    sim.step()
    sim.step()
    sim.step(seconds=10, results=FAIL)
    stored = sim.release.to_status()
    restored = Release.from_status(stored)
    assert restored == sim.release
    sim.release = restored
    d = sim.step(seconds=5)
    assert d.release.step == 1 and d.release.failures == 1 and d.release.runs == 1


def test_first_revision_goes_straight_to_stable():
    spec = canary_spec()
    sim = Sim(spec)
    sim.observed.clear()
    sim.release = Release()
    d = sim.step(desired="a")
    assert d.phase == "Pending" and d.replicas == {"a": 10}
    d = sim.step(desired="a")
    assert d.release.stable == "a" and d.release.canary is None and d.phase == "Healthy"


def test_blue_green_is_switched_after_preview_and_promoted():
    sim = Sim(bg_spec(previewReplicas=1))
    d = sim.step()
    assert d.replicas == {"s": 4, "c": 1} and d.service_revision == "s" and d.preview_revision == "c"
    d = sim.step()  # preview ready -> switch: new revision scaled to full size first
    assert d.release.step == 1 and d.replicas["c"] == 4 and d.service_revision == "s"
    d = sim.step()  # full size available -> switched -> no post analysis -> promoted
    assert d.release.stable == "c" and d.service_revision == "c"


def test_blue_green_waits_for_manual_promotion():
    sim = Sim(bg_spec(autoPromotionEnabled=False))
    sim.step()
    d = sim.step()
    assert d.release.step == 1 and d.phase == "Paused" and d.service_revision == "s"
    d = sim.step(seconds=600)
    assert d.release.step == 1
    sim.step(action=Action.parse("promote:1", None))
    assert sim.step().release.stable == "c"


def test_blue_green_pre_promotion_failure_never_switches():
    sim = Sim(bg_spec(prePromotionAnalysis=ANALYSIS))
    sim.step()
    d = sim.step()
    assert d.release.step == 1 and d.release.last_run_at == sim.now
    d = sim.step(seconds=10, results=FAIL)
    assert d.release.step == 1 and d.service_revision == "s"
    d = sim.step(seconds=10, results=FAIL)
    assert d.release.rolled_back == "c" and d.service_revision == "s" and d.replicas["c"] == 0


def test_blue_green_post_promotion_failure_switches_back():
    sim = Sim(bg_spec(postPromotionAnalysis={**ANALYSIS, "failureLimit": 1}))
    sim.step()
    sim.step()
    d = sim.step()
    assert d.release.step == 2 and d.service_revision == "c" and d.replicas["s"] == 4
    d = sim.step(seconds=10, results=FAIL)
    assert d.release.rolled_back == "c" and d.service_revision == "s" and d.replicas == {"s": 4, "c": 0}


def test_blue_green_post_promotion_pass_promotes():
    sim = Sim(bg_spec(postPromotionAnalysis=ANALYSIS))
    sim.step()
    sim.step()
    sim.step()
    d = sim.step(seconds=10, results=PASS)
    assert d.release.stable == "c" and d.release.history[0]["outcome"] == "Promoted"
