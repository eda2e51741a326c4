"""The release state machine: canary and blue-green, promoted or rolled back from analysis verdicts.

``decide`` is pure: it takes the spec, the desired revision, the observed Deployments, the release state stored in
status, an action (promote / abort / retry) not yet consumed, the results of an analysis run made this pass (if one
was due, see ``analysis_due``) and the time, and returns what to run, where traffic goes, the new release state,
Events, and when to look again. Everything it needs to resume is in the returned ``Release``, which is written to
status: a restarted operator continues the same step with the same counts.

Canary (steps from ``spec.strategy.canary.steps``; background analysis at every ``analysis.interval`` while the
canary has traffic):

- ``setWeight: w`` -> the canary is sized for w; the step is done once its pods are available.
- ``pause: {duration}`` -> done once the duration has passed since the step started; ``pause: {}`` waits for promote.
- ``analysis: {}`` -> done at the first passing analysis run after the step started.
- after the last step the canary is promoted: it becomes stable, the Service selects it alone, and the old revision
  is removed ``scaleDownDelaySeconds`` later.
- a failed run counts toward ``failureLimit`` / ``consecutiveFailureLimit``; reaching a limit (or abort) rolls back in
  the same pass: canary weight 0, traffic on stable alone, canary scaled to 0, ``rolledBackRevision`` set so the same
  revision is not released again until a retry or a new revision.

Blue-green (``currentStep``): 0 preview starting -> 1 preview ready (pre-promotion analysis, auto-promotion wait or
manual promote; the new revision is then scaled to full size) -> 2 switched (the model Service selects the new
revision; post-promotion analysis, a failure switches back) -> promoted, old revision removed after
``scaleDownDelaySeconds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from modelpilot.api import ModelDeploymentSpec
from modelpilot.api.durations import parse_duration
from modelpilot.api.status import Verdict
from modelpilot.api.strategy import AnalysisSpec
from modelpilot.rollout.conditions import rfc3339
from modelpilot.rollout.split import split
from modelpilot.rollout.state import Observed
from modelpilot.rollout.verdicts import CheckResult, run_outcome

HISTORY_LIMIT = 10
Event = tuple[str, str, str]

PROMOTE, ABORT, RETRY = "promote", "abort", "retry"


def parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


@dataclass(frozen=True)
class Action:
    """A request from the kubectl plugin: the annotation ``modelpilot.io/action: <verb>:<id>``."""

    verb: str
    id: str

    @classmethod
    def parse(cls, value: str | None, last: str | None) -> Action | None:
        """The action to carry out now, or None if there is none or it was consumed already (same id).

        >>> Action.parse("promote:42", None), Action.parse("promote:42", "promote:42"), Action.parse("x:1", None)
        (Action(verb='promote', id='promote:42'), None, None)
        """
        if not value or value == last:
            return None
        verb, _, _ = value.partition(":")
        return cls(verb, value) if verb in (PROMOTE, ABORT, RETRY) else None


@dataclass(frozen=True)
class Release:
    """The release part of the status (see ``ModelDeploymentStatus``)."""

    stable: str | None = None
    canary: str | None = None
    step: int | None = None
    weight: int = 0
    step_started_at: datetime | None = None
    runs: int = 0
    failures: int = 0
    consecutive: int = 0
    last_run_at: datetime | None = None  # the analysis clock: the next run is due one interval after it
    step_verdict: Verdict | None = None
    metrics: tuple[dict[str, Any], ...] = ()
    rolled_back: str | None = None
    last_action: str | None = None
    history: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> Release:
        a = status.get("analysis") or {}
        verdict = a.get("stepVerdict")
        return cls(
            stable=status.get("stableRevision"),
            canary=status.get("canaryRevision"),
            step=status.get("currentStep"),
            weight=status.get("canaryWeight") or 0,
            step_started_at=parse_time(status.get("stepStartedAt")),
            runs=a.get("runs", 0),
            failures=a.get("failures", 0),
            consecutive=a.get("consecutiveFailures", 0),
            last_run_at=parse_time(a.get("lastRunAt")),
            step_verdict=Verdict(verdict) if verdict else None,
            metrics=tuple(a.get("metrics") or ()),
            rolled_back=status.get("rolledBackRevision"),
            last_action=status.get("lastAction"),
            history=tuple(status.get("history") or ()),
        )

    def to_status(self) -> dict[str, Any]:
        """Status fields; ``None`` clears a field (the status is written as a merge patch)."""
        return {
            "stableRevision": self.stable,
            "canaryRevision": self.canary,
            "currentStep": self.step,
            "canaryWeight": self.weight if self.canary else None,
            "stepStartedAt": rfc3339(self.step_started_at) if self.step_started_at else None,
            "rolledBackRevision": self.rolled_back,
            "lastAction": self.last_action,
            "analysis": {
                "runs": self.runs,
                "failures": self.failures,
                "consecutiveFailures": self.consecutive,
                "lastRunAt": rfc3339(self.last_run_at) if self.last_run_at else None,
                "stepVerdict": self.step_verdict.value if self.step_verdict else None,
                "metrics": list(self.metrics),
            },
            "history": list(self.history),
        }

    def fresh_analysis(self, now: datetime | None) -> Release:
        return replace(self, runs=0, failures=0, consecutive=0, last_run_at=now, step_verdict=None, metrics=())


@dataclass
class Decision:
    release: Release
    replicas: dict[str, int]  # revision -> Deployment replicas
    remove: tuple[str, ...] = ()  # revisions whose Deployment goes
    service_revision: str | None = None  # the model Service selects this revision; None = every revision's pods
    preview_revision: str | None = None  # blue-green preview Service target
    router_weight: int = 0  # weight for a mesh router (the canary has traffic only once ready)
    phase: str = "Healthy"
    progressing: tuple[str, str, str] | None = None  # (status, reason, message)
    degraded: tuple[str, str, str] | None = None
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None


def _history(release: Release, revision: str, outcome: str, reason: str, now: datetime) -> tuple[dict, ...]:
    entry = {"revision": revision, "outcome": outcome, "reason": reason, "time": rfc3339(now)}
    return (entry, *release.history)[:HISTORY_LIMIT]


def _seconds_until(start: datetime | None, seconds: float, now: datetime) -> float:
    if start is None:
        return 0.0
    return max(0.0, (start + timedelta(seconds=seconds) - now).total_seconds())


def analysis_for(spec: ModelDeploymentSpec, release: Release) -> AnalysisSpec | None:
    """The analysis that applies to the release in its current state, if any."""
    strategy = spec.strategy
    if strategy is None or release.canary is None:
        return None
    if strategy.canary:
        return spec.analysis if release.weight > 0 else None
    bg = strategy.blue_green
    return {1: bg.pre_promotion_analysis, 2: bg.post_promotion_analysis}.get(release.step or 0)


def analysis_due(spec: ModelDeploymentSpec, release: Release, now: datetime) -> AnalysisSpec | None:
    """The analysis to run in this pass: one applies and its clock has run for an interval."""
    analysis = analysis_for(spec, release)
    if analysis is None or release.last_run_at is None:
        return None
    if _seconds_until(release.last_run_at, parse_duration(analysis.interval), now) > 0:
        return None
    return analysis


def _record_run(release: Release, analysis: AnalysisSpec, results: list[CheckResult], now: datetime
                ) -> tuple[Release, Verdict | None, list[Event]]:
    outcome = run_outcome(results, analysis)
    failures, consecutive = release.failures, release.consecutive
    events: list[Event] = []
    if outcome is Verdict.Fail:
        failures, consecutive = failures + 1, consecutive + 1
        for r in results:
            if r.verdict in (Verdict.Fail, Verdict.Error):
                events.append(("Warning", "AnalysisFailed" if r.verdict is Verdict.Fail else "AnalysisError",
                               f"{r.name}: {r.message}"))
    elif outcome is Verdict.Pass:
        consecutive = 0
    updated = replace(
        release, runs=release.runs + 1, failures=failures, consecutive=consecutive, last_run_at=now,
        metrics=tuple(r.to_status() for r in results),
        step_verdict=outcome if outcome is not None else release.step_verdict,
    )
    return updated, outcome, events


def _limit_reached(release: Release, analysis: AnalysisSpec) -> bool:
    if release.failures >= analysis.failure_limit:
        return True
    limit = analysis.consecutive_failure_limit
    return limit is not None and release.consecutive >= limit


def _failed_checks(release: Release) -> str:
    failed = [f"{m['name']}: {m.get('message', '')}" for m in release.metrics if m.get("verdict") in ("Fail", "Error")]
    return "; ".join(failed) or "analysis failed"


def decide(
    *,
    spec: ModelDeploymentSpec,
    desired: str,
    observed: Observed,
    release: Release,
    now: datetime,
    action: Action | None = None,
    results: list[CheckResult] | None = None,
) -> Decision:
    """One pass of a release strategy (``spec.strategy`` is set). See the module docstring."""
    events: list[Event] = []
    if action is not None:
        release = replace(release, last_action=action.id)
        events.append(("Normal", f"Action{action.verb.capitalize()}", f"{action.verb} requested"))

    if action is not None and action.verb == RETRY and release.rolled_back == desired:
        release = replace(release, rolled_back=None)

    stable_state = observed.get(release.stable)
    if release.stable is None or stable_state is None:
        return _first_revision(spec, desired, observed, release, now, events)

    # A spec change during a release supersedes the revision under test.
    if release.canary is not None and release.canary != desired:
        events.append(("Normal", "ReleaseSuperseded", f"revision {release.canary} superseded by {desired}"))
        release = replace(release, history=_history(release, release.canary, "Superseded",
                                                     f"spec changed to revision {desired}", now),
                          canary=None, step=None, weight=0)

    if desired in (release.stable, release.rolled_back) or (release.canary is None and spec.paused):
        return _steady(spec, desired, observed, release, now, events)

    if release.canary is None:
        events.append(("Normal", "ReleaseStarted", f"releasing revision {desired}"))
        release = replace(release.fresh_analysis(None), canary=desired, step=0, weight=0, step_started_at=now)

    analysis = analysis_for(spec, release)
    if results is not None and analysis is not None:
        release, _, run_events = _record_run(release, analysis, results, now)
        events.extend(run_events)
        if _limit_reached(release, analysis):
            return _rollback(spec, observed, release, now, events, "RolledBack", _failed_checks(release))
    if action is not None and action.verb == ABORT:
        return _rollback(spec, observed, release, now, events, "Aborted", "aborted by request")

    promote = action is not None and action.verb == PROMOTE
    if spec.strategy.canary:
        return _canary(spec, observed, release, now, events, promote)
    return _blue_green(spec, observed, release, now, events, promote)


def _first_revision(spec, desired, observed, release, now, events) -> Decision:
    """No stable revision yet: bring the desired one up; it becomes stable once available (nothing to compare)."""
    state = observed.get(desired)
    if state is not None and state.available and state.desired == spec.replicas:
        events.append(("Normal", "RevisionAvailable", f"revision {desired} is available and serves"))
        release = replace(release, stable=desired, canary=None, step=None, weight=0)
        return _steady(spec, desired, observed, release, now, events)
    if state is None:
        events.append(("Normal", "RevisionCreated", f"started revision {desired} with {spec.replicas} replicas"))
    remove = tuple(sorted(r for r in observed.revisions if r != desired))
    return Decision(
        release=replace(release, stable=None, canary=None, step=None, weight=0), replicas={desired: spec.replicas},
        remove=remove, service_revision=desired, phase="Pending",
        progressing=("True", "NewRevisionRollingOut", f"revision {desired}: first revision starting"),
        events=events,
    )


def _scale_down_delay(spec: ModelDeploymentSpec) -> int:
    s = spec.strategy
    return s.canary.scale_down_delay_seconds if s.canary else s.blue_green.scale_down_delay_seconds


def _steady(spec, desired, observed, release, now, events) -> Decision:
    """No release in progress: stable serves alone. Old revisions go once the scale-down delay after the last
    promotion has passed; a rolled-back revision is kept at zero replicas for a quick retry."""
    stable = release.stable
    replicas = {stable: spec.replicas}
    promoted_at = parse_time(release.history[0]["time"]) if release.history else None
    wait = _seconds_until(promoted_at, _scale_down_delay(spec), now)
    remove = []
    for rev in observed.revisions:
        if rev == stable:
            continue
        if rev == release.rolled_back and rev == desired:
            replicas[rev] = 0
        elif wait <= 0:
            remove.append(rev)
    d = Decision(release=replace(release, canary=None, step=None, weight=0), replicas=replicas, remove=tuple(remove),
                 service_revision=stable, phase="Healthy", events=events,
                 requeue_after=wait if wait > 0 else None)
    if desired == release.rolled_back:
        last = next((h for h in release.history if h["revision"] == desired), None)
        reason = last["reason"] if last else "rolled back"
        d.phase = "Degraded"
        d.degraded = ("True", "RolledBack", f"revision {desired} was rolled back ({reason}); "
                      "retry it or change the spec")
        d.progressing = ("False", "RolledBack", f"revision {stable} serves")
    elif desired != stable and spec.paused:
        d.phase = "Paused"
        d.progressing = ("Unknown", "RolloutPaused", f"spec.paused: revision {desired} waits")
    return d


def _rollback(spec, observed, release, now, events, outcome, reason) -> Decision:
    canary = release.canary
    events.append(("Warning", "RolledBack" if outcome == "RolledBack" else "Aborted",
                   f"revision {canary}: {reason}; traffic back on {release.stable}"))
    release = replace(release, canary=None, step=None, weight=0, rolled_back=canary,
                      history=_history(release, canary, outcome, reason, now))
    d = Decision(release=release, replicas={release.stable: spec.replicas, canary: 0},
                 service_revision=release.stable, phase="Degraded", events=events,
                 remove=tuple(r for r in observed.revisions if r not in (release.stable, canary)))
    d.degraded = ("True", "RolledBack", f"revision {canary} was rolled back ({reason})")
    d.progressing = ("False", "RolledBack", f"revision {release.stable} serves")
    return d


def _promote(spec, observed, release, now, events, reason) -> Decision:
    new = release.canary
    events.append(("Normal", "Promoted", f"revision {new} promoted ({reason})"))
    release = replace(release, stable=new, canary=None, step=None, weight=0,
                      history=_history(release, new, "Promoted", reason, now))
    return _steady(spec, new, observed, release, now, events)


def _canary(spec, observed, release, now, events, promote) -> Decision:
    steps = spec.strategy.canary.steps
    by_pods = spec.traffic_routing is None or spec.traffic_routing.replicas is not None
    state = observed.get(release.canary)
    step, started, verdict = release.step or 0, release.step_started_at, release.step_verdict
    weight = release.weight
    wait: float | None = None

    def ready_for(w: int) -> bool:
        _, need = split(spec.replicas, w, by_pods=by_pods)
        return state is not None and state.desired == need and state.available

    while step < len(steps) and not spec.paused:
        s = steps[step]
        if s.set_weight is not None:
            weight = s.set_weight
            if not (ready_for(weight) or promote):
                break
        elif s.pause is not None:
            if s.pause.duration is None:
                if not promote:
                    break
            else:
                wait = _seconds_until(started, parse_duration(s.pause.duration), now)
                if wait > 0 and not promote:
                    break
        elif s.analysis is not None:
            if verdict is not Verdict.Pass and not promote:
                break
        promote = False  # a promote moves past one step
        step, started, verdict, wait = step + 1, now, None, None
        events.append(("Normal", "StepCompleted", f"step {step}/{len(steps)} done"))

    if weight > 0 and ready_for(weight) and release.last_run_at is None:
        release = replace(release, last_run_at=now)  # the canary has traffic: the analysis clock starts
    release = replace(release, step=step, step_started_at=started, weight=weight, step_verdict=verdict)
    if step >= len(steps):
        return _promote(spec, observed, release, now, events, f"all {len(steps)} steps passed")

    stable_n, canary_n = split(spec.replicas, weight, by_pods=by_pods)
    has_traffic = weight > 0 and state is not None and state.ready > 0
    current = steps[step]
    paused = spec.paused or (current.pause is not None and current.pause.duration is None)
    analysis = analysis_for(spec, release)
    if analysis is not None and release.last_run_at is not None:
        next_run = _seconds_until(release.last_run_at, parse_duration(analysis.interval), now)
        wait = next_run if wait is None else min(wait, next_run)
    d = Decision(
        release=release,
        replicas={release.stable: stable_n, release.canary: canary_n},
        remove=tuple(r for r in observed.revisions if r not in (release.stable, release.canary)),
        service_revision=None if (by_pods and has_traffic) else release.stable,
        router_weight=weight if ready_for(weight) else 0,
        phase="Paused" if paused else "Progressing",
        progressing=("Unknown", "RolloutPaused", f"step {step + 1}/{len(steps)}: paused") if paused else
        ("True", "CanaryProgressing", f"revision {release.canary}: step {step + 1}/{len(steps)}, weight {weight}%"),
        events=events,
        requeue_after=wait,
    )
    return d


def _blue_green(spec, observed, release, now, events, promote) -> Decision:
    bg = spec.strategy.blue_green
    new, old = release.canary, release.stable
    state = observed.get(new)
    total = spec.replicas
    preview = bg.preview_replicas or total
    step = release.step or 0
    wait: float | None = None
    new_replicas = preview

    if step == 0 and state is not None and state.available and state.desired == preview:
        step = 1
        release = replace(release.fresh_analysis(now if bg.pre_promotion_analysis else None), step=1,
                          step_started_at=now)
        events.append(("Normal", "PreviewReady", f"revision {new} is ready on the preview Service"))
    if step == 1:
        analysed = bg.pre_promotion_analysis is None or release.step_verdict is Verdict.Pass
        timer = _seconds_until(release.step_started_at, bg.auto_promotion_seconds, now)
        go = not spec.paused and (promote or (analysed and bg.auto_promotion_enabled and timer <= 0))
        if go:
            new_replicas = total
            if state is not None and state.available and state.desired == total:
                step = 2
                release = replace(release.fresh_analysis(now if bg.post_promotion_analysis else None), step=2,
                                  step_started_at=now)
                events.append(("Normal", "Switched", f"the model Service now selects revision {new}"))
        elif analysed and bg.auto_promotion_enabled:
            wait = timer
    if step == 2:
        new_replicas = total
        if bg.post_promotion_analysis is None or release.step_verdict is Verdict.Pass:
            return _promote(spec, observed, replace(release, weight=100), now, events, "blue-green switch verified")

    release = replace(release, step=step, weight=100 if step == 2 else 0)
    analysis = analysis_for(spec, release)
    if analysis is not None and release.last_run_at is not None:
        next_run = _seconds_until(release.last_run_at, parse_duration(analysis.interval), now)
        wait = next_run if wait is None else min(wait, next_run)
    waiting_manual = step == 1 and not bg.auto_promotion_enabled
    labels = {0: "preview starting", 1: "preview ready", 2: "switched, verifying"}
    return Decision(
        release=release,
        replicas={old: total, new: new_replicas},
        remove=tuple(r for r in observed.revisions if r not in (old, new)),
        service_revision=new if step == 2 else old,
        preview_revision=new,
        router_weight=100 if step == 2 else 0,
        phase="Paused" if waiting_manual or spec.paused else "Progressing",
        progressing=("True", "BlueGreenProgressing", f"revision {new}: {labels[step]}"),
        events=events,
        requeue_after=wait,
    )

