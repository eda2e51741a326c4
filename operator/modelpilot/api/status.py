"""``ModelDeployment.status``: what the operator observed and decided, written once per reconcile pass.

Everything a release needs to resume lives here (revisions, current step, when the step started, analysis counts,
the last consumed action), so an operator restarted at any moment continues the same step with the same counts.

Conditions follow the Kubernetes API conventions: a ``type``, a ``status`` of True/False/Unknown, a CamelCase
``reason``, a human ``message``, ``lastTransitionTime`` (changes only when ``status`` flips) and the
``observedGeneration`` of the spec the condition was computed from.
"""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from modelpilot.api.base import ApiModel


class Phase(str, Enum):
    Pending = "Pending"  # nothing available yet (first revision starting)
    Healthy = "Healthy"  # the desired revision serves all replicas
    Progressing = "Progressing"  # a new revision is being brought up or released
    Paused = "Paused"  # spec.paused, or a pause step without a duration
    Degraded = "Degraded"  # the spec is invalid, the pods cannot become available, or a release was rolled back


class ConditionStatus(str, Enum):
    true = "True"
    false = "False"
    unknown = "Unknown"


class Verdict(str, Enum):
    Pass = "Pass"
    Fail = "Fail"
    Inconclusive = "Inconclusive"
    NoData = "NoData"
    Error = "Error"


class Condition(ApiModel):
    """One aspect of the resource's state (Kubernetes API conventions)."""

    type: str = Field(description="Condition type: Ready, Progressing or Degraded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable CamelCase reason for the last transition.")
    message: str = Field(description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation of the spec this condition was computed from."
    )


class MetricResult(ApiModel):
    """The last result of one check."""

    name: str = Field(description="Name of the check.")
    verdict: Verdict = Field(description="Pass, Fail, Inconclusive, NoData or Error.")
    value: float | None = Field(default=None, description="Measured value for the canary.")
    stable_value: float | None = Field(default=None, description="Measured value for the stable revision.")
    samples: int | None = Field(default=None, description="Requests (or scored predictions) behind the value.")
    message: str | None = Field(default=None, description="Why this verdict.")


class AnalysisStatus(ApiModel):
    """Counts and last results of the analysis of the current release."""

    runs: int = Field(default=0, description="Analysis runs so far in this release.")
    failures: int = Field(default=0, description="Runs with a failed check.")
    consecutive_failures: int = Field(default=0, description="Failed runs in a row.")
    last_run_at: str | None = Field(default=None, description="When the last run happened (RFC 3339).")
    step_verdict: Verdict | None = Field(default=None, description="Verdict of the current analysis step, if any.")
    metrics: list[MetricResult] = Field(default_factory=list, description="Results of the last run.")


class HistoryEntry(ApiModel):
    """A finished release."""

    revision: str = Field(description="The revision that was released.")
    outcome: str = Field(description="Promoted, RolledBack or Aborted.")
    reason: str = Field(description="Why.")
    time: str = Field(description="When (RFC 3339).")


class ModelDeploymentStatus(ApiModel):
    """Observed state of a ModelDeployment."""

    observed_generation: int | None = Field(default=None, description="The metadata.generation last acted on.")
    phase: Phase | None = Field(default=None, description="Summary: Pending, Healthy, Progressing, Paused, Degraded.")
    stable_revision: str | None = Field(default=None, description="Revision that serves traffic.")
    canary_revision: str | None = Field(default=None, description="Revision being released, if any.")
    current_step: int | None = Field(default=None, description="Index of the current canary step (blue-green: 0 "
                                     "preview, 1 switched).")
    canary_weight: int | None = Field(default=None, description="Percent of traffic on the canary revision.")
    step_started_at: str | None = Field(default=None, description="When the current step started (RFC 3339).")
    rolled_back_revision: str | None = Field(default=None, description="Revision rolled back last; it is not "
                                             "released again until a retry or a new revision.")
    last_action: str | None = Field(default=None, description="The last consumed action (promote, abort, retry).")
    analysis: AnalysisStatus | None = Field(default=None, description="Analysis of the current (or last) release.")
    history: list[HistoryEntry] = Field(default_factory=list, description="Recent finished releases, newest first.")
    replicas: int | None = Field(default=None, description="Model server pods of all revisions.")
    ready_replicas: int | None = Field(default=None, description="Ready model server pods of all revisions.")
    updated_replicas: int | None = Field(default=None, description="Pods of the desired revision.")
    selector: str | None = Field(
        default=None, description="Label selector of the model's pods (scale subresource, used by autoscalers)."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Progressing and Degraded.")
