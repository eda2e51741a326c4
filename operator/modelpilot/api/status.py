"""``ModelDeployment.status``: what the operator observed and decided, written once per reconcile pass.

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
    Progressing = "Progressing"  # a new revision is being brought up
    Paused = "Paused"  # spec.paused: no new revision is started
    Degraded = "Degraded"  # the spec is invalid or the pods cannot become available


class ConditionStatus(str, Enum):
    true = "True"
    false = "False"
    unknown = "Unknown"


class Condition(ApiModel):
    """One aspect of the resource's state (Kubernetes API conventions)."""

    type: str = Field(description="Condition type: Ready, Progressing or Degraded.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="Machine-readable CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details.")
    last_transition_time: str = Field(description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation of the spec this condition was computed from."
    )


class ModelDeploymentStatus(ApiModel):
    """Observed state of a ModelDeployment."""

    observed_generation: int | None = Field(default=None, description="The metadata.generation last acted on.")
    phase: Phase | None = Field(default=None, description="Summary: Pending, Healthy, Progressing, Paused, Degraded.")
    stable_revision: str | None = Field(default=None, description="Revision that serves traffic.")
    replicas: int | None = Field(default=None, description="Model server pods of all revisions.")
    ready_replicas: int | None = Field(default=None, description="Ready model server pods of all revisions.")
    updated_replicas: int | None = Field(default=None, description="Pods of the desired revision.")
    selector: str | None = Field(
        default=None, description="Label selector of the model's pods (scale subresource, used by autoscalers)."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Progressing and Degraded.")
