"""The status a pass writes: phase, counts and conditions, from the plan and what was observed.

Phase precedence: Degraded (invalid spec, or the desired revision failed) > Paused > Pending (no revision serves yet)
> Progressing (a new revision is coming up, or replicas are not all ready) > Healthy.

========================================  ========  ==================  ===========================  ==============
situation                                 phase     Ready               Progressing                  Degraded
========================================  ========  ==================  ===========================  ==============
invalid spec                              Degraded  from serving pods   False InvalidSpec            True InvalidSpec
desired revision past its deadline        Degraded  from serving pods   False ProgressDeadlineExc.   True ProgressDe..
paused with a pending revision            Paused    from serving pods   Unknown RolloutPaused        False AsExpected
no revision serves yet                    Pending   False               True NewRevisionRollingOut   False AsExpected
stable serves, new revision coming up     Progr.    from serving pods   True NewRevisionRollingOut   False AsExpected
desired serves, not all replicas ready    Progr.    False ReplicasNot.  False RolloutComplete        False AsExpected
desired serves, all ready                 Healthy   True AllRepl.Ready  False RolloutComplete        False AsExpected
========================================  ========  ==================  ===========================  ==============
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelpilot.api.status import Phase
from modelpilot.rollout.conditions import DEGRADED, PROGRESSING, READY, Cond, merge_conditions
from modelpilot.rollout.plan import Plan
from modelpilot.rollout.release import Decision
from modelpilot.rollout.state import Observed, RevisionState


def _ready(serving: str | None, replicas: int, observed: Observed) -> Cond:
    state = observed.get(serving)
    if state is None:
        return Cond(READY, "False", "NoRevisionAvailable", "no revision of the model is available yet")
    if state.ready >= replicas:
        return Cond(READY, "True", "AllReplicasReady", f"revision {serving}: {state.ready}/{replicas} replicas ready")
    return Cond(READY, "False", "ReplicasNotReady", f"revision {serving}: {state.ready}/{replicas} replicas ready")


def compute_status(
    *,
    selector: str,
    generation: int | None,
    previous: dict[str, Any],
    observed: Observed,
    replicas: int,
    now: datetime,
    plan: Plan | None = None,
    invalid: str | None = None,
) -> dict[str, Any]:
    """Status for one pass. ``plan`` is None when the spec is invalid (``invalid`` then holds the reason text)."""
    serving = plan.stable if plan else previous.get("stableRevision")
    ready = _ready(serving, replicas, observed)
    ok = Cond(DEGRADED, "False", "AsExpected", "no failure observed")
    failure = observed.get(plan.desired).failure if plan and observed.get(plan.desired) else None

    if invalid is not None:
        phase = Phase.Degraded
        progressing = Cond(PROGRESSING, "False", "InvalidSpec", "the spec is invalid; nothing was changed")
        degraded = Cond(DEGRADED, "True", "InvalidSpec", invalid)
    elif failure is not None and plan is not None and plan.progressing:
        phase = Phase.Degraded
        progressing = Cond(PROGRESSING, "False", "ProgressDeadlineExceeded", f"revision {plan.desired}: {failure}")
        degraded = Cond(DEGRADED, "True", "ProgressDeadlineExceeded", f"revision {plan.desired}: {failure}")
    elif plan is not None and plan.paused:
        phase = Phase.Paused
        progressing = Cond(PROGRESSING, "Unknown", "RolloutPaused", f"spec.paused: revision {plan.desired} waits")
        degraded = ok
    elif plan is not None and plan.progressing:
        state = observed.get(plan.desired)
        got = state.available_replicas if state else 0
        phase = Phase.Pending if serving is None else Phase.Progressing
        progressing = Cond(
            PROGRESSING, "True", "NewRevisionRollingOut", f"revision {plan.desired}: {got}/{replicas} available"
        )
        degraded = ok
    else:
        phase = Phase.Healthy if ready.status == "True" else Phase.Progressing
        progressing = Cond(PROGRESSING, "False", "RolloutComplete", f"revision {serving} serves")
        degraded = ok

    fields = {"stableRevision": serving}
    return _assemble(phase.value, fields, (ready, progressing, degraded), observed.get(plan.desired) if plan else None,
                     selector=selector, generation=generation, previous=previous, observed=observed, now=now)


def release_status(
    *,
    decision: Decision,
    desired: str,
    selector: str,
    generation: int | None,
    previous: dict[str, Any],
    observed: Observed,
    replicas: int,
    now: datetime,
) -> dict[str, Any]:
    """Status of a pass of a release strategy: the release fields, counts, phase and conditions from ``decision``."""
    serving = decision.service_revision or decision.release.stable
    ready = _ready(serving, decision.replicas.get(serving, replicas) if serving else replicas, observed)
    phase = decision.phase
    if phase == Phase.Healthy.value and ready.status != "True":
        phase = Phase.Progressing.value  # scaling: the revision serves, not all its replicas are ready yet
    progressing = Cond(PROGRESSING, *(decision.progressing or ("False", "RolloutComplete", f"revision {serving} "
                                                                                           "serves")))
    degraded = Cond(DEGRADED, *(decision.degraded or ("False", "AsExpected", "no failure observed")))
    return _assemble(phase, decision.release.to_status(), (ready, progressing, degraded), observed.get(desired),
                     selector=selector, generation=generation, previous=previous, observed=observed, now=now)


def _assemble(phase: str, fields: dict[str, Any], conditions: tuple[Cond, ...], desired: RevisionState | None, *,
              selector: str, generation: int | None, previous: dict[str, Any], observed: Observed,
              now: datetime) -> dict[str, Any]:
    """The status document: phase, the decision's own fields, counts over every revision, and conditions."""
    return {
        "observedGeneration": generation,
        "phase": phase,
        **fields,
        "replicas": observed.current,
        "readyReplicas": observed.ready,
        "updatedReplicas": desired.current if desired else 0,
        "selector": selector,
        "conditions": merge_conditions(previous.get("conditions") or [], list(conditions), generation=generation,
                                       now=now),
    }
