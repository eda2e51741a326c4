"""``ModelDeployment.spec``: what model to serve, with which server, how many replicas.

Every field carries a description: they become the CRD's OpenAPI schema, which is what ``kubectl explain`` prints.
Validation that the API server can enforce (types, enums, ranges, patterns, required fields) lives in the field
definitions; cross-field rules that OpenAPI cannot express on every cluster are ``model_validator``s, which the
operator applies before acting and reports as an ``InvalidSpec`` condition.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import Field, model_validator

from modelpilot.api.base import ApiModel, Quantity, free_form
from modelpilot.api.strategy import AnalysisSpec, Strategy, TrafficRouting

# Where a model can be loaded from: the model server understands these schemes.
URI_PATTERN = r"^(file|https?)://\S+$"
# Environment variable names as the API server accepts them (C identifier-like, plus '.' and '-').
ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"


class ModelFormat(str, Enum):
    sklearn = "sklearn"
    onnx = "onnx"


class ModelSpec(ApiModel):
    """The model artefact to serve."""

    name: str = Field(
        description="Name the model is served under (the Open Inference Protocol model name).",
        min_length=1,
        max_length=63,
        pattern=r"^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$",
    )
    version: str = Field(
        description="Version of the model. Changing it starts a new revision.",
        min_length=1,
        max_length=63,
        pattern=r"^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$",
    )
    uri: str = Field(
        description="Where the model server loads the model from: a file:// path inside the pod or an http(s):// URL.",
        pattern=URI_PATTERN,
        max_length=2048,
    )
    format: ModelFormat = Field(description="Serialisation format of the model: sklearn (joblib) or onnx.")
    sha256: str | None = Field(
        default=None,
        description="Optional SHA-256 of the model file; the server refuses to load a file that does not match.",
        pattern=r"^[a-f0-9]{64}$",
    )


class EnvVar(ApiModel):
    """An environment variable for the model server container."""

    name: str = Field(description="Variable name.", min_length=1, pattern=ENV_NAME_PATTERN)
    value: str | None = Field(default=None, description="Literal value.")
    value_from: Annotated[dict[str, Any] | None, free_form()] = Field(
        default=None,
        description="Source for the value (a core/v1 EnvVarSource: configMapKeyRef, secretKeyRef, fieldRef, ...).",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"env {self.name!r}: set value or valueFrom, not both")
        return self


class ResourceRequirements(ApiModel):
    """Compute resources of the model server container (core/v1 ResourceRequirements)."""

    requests: dict[str, Quantity] | None = Field(
        default=None, description="Minimum resources, e.g. {cpu: 500m, memory: 512Mi}. Needed for CPU autoscaling."
    )
    limits: dict[str, Quantity] | None = Field(default=None, description="Maximum resources, e.g. {memory: 1Gi}.")


class ServerSpec(ApiModel):
    """The model server that runs the model."""

    image: str | None = Field(
        default=None,
        description="Container image of the model server. Defaults to the operator's configured model server image.",
        min_length=1,
    )
    port: int = Field(default=8080, ge=1, le=65535, description="Port the server listens on (HTTP, Open Inference "
                      "Protocol v2 and /metrics).")
    resources: ResourceRequirements | None = Field(default=None, description="Compute resources of the server.")
    env: list[EnvVar] = Field(default_factory=list, description="Extra environment variables for the server.")
    args: list[str] = Field(default_factory=list, description="Extra command-line arguments for the server.")


class AutoscalingSpec(ApiModel):
    """Horizontal autoscaling of the model's replicas. The operator creates a HorizontalPodAutoscaler that scales the
    ModelDeployment itself (its scale subresource), so autoscaling and releases never fight over replicas."""

    # minReplicas <= maxReplicas and "at least one target" are not in the CRD schema: CEL rules
    # (x-kubernetes-validations) would make the CRD itself invalid on clusters before 1.25, which kubectl rejects.
    # The operator checks them before acting and reports an InvalidSpec condition.

    min_replicas: int = Field(default=1, ge=1, description="Lower bound for the number of replicas.")
    max_replicas: int = Field(ge=1, description="Upper bound for the number of replicas; at least minReplicas.")
    target_cpu_utilization_percentage: int | None = Field(
        default=None, ge=1, le=1000, description="Target average CPU use, as a percentage of the CPU request."
    )
    target_memory_utilization_percentage: int | None = Field(
        default=None, ge=1, le=1000, description="Target average memory use, as a percentage of the memory request."
    )

    @model_validator(mode="after")
    def _bounds_and_targets(self) -> AutoscalingSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not be greater than maxReplicas ({self.max_replicas})"
            )
        if self.target_cpu_utilization_percentage is None and self.target_memory_utilization_percentage is None:
            raise ValueError("set targetCPUUtilizationPercentage and/or targetMemoryUtilizationPercentage")
        return self


class ModelDeploymentSpec(ApiModel):
    """Desired state of a ModelDeployment."""

    model: ModelSpec = Field(description="The model to serve.")
    server: ServerSpec = Field(default_factory=ServerSpec, description="The model server that runs the model.")
    template: Annotated[dict[str, Any] | None, free_form()] = Field(
        default=None,
        description="Optional PodTemplateSpec merged over the generated one (containers merge by name; the server "
        "container is 'model-server'), for custom servers, sidecars, node selectors, volumes.",
    )
    replicas: int = Field(
        default=1, ge=0, description="Number of model server pods. Owned by the HorizontalPodAutoscaler when "
        "autoscaling is set (scale subresource)."
    )
    autoscaling: AutoscalingSpec | None = Field(default=None, description="Horizontal autoscaling of the replicas.")
    paused: bool = Field(
        default=False, description="When true, the operator starts no new revision and a release in progress holds "
        "its step (analysis still runs and a regression still rolls back)."
    )
    strategy: Strategy | None = Field(
        default=None, description="How a new revision is released (canary or blueGreen). Without one, a new "
        "revision replaces the old as soon as it is available."
    )
    analysis: AnalysisSpec | None = Field(
        default=None, description="Checks that judge a canary (background, at every interval, and in analysis steps)."
    )
    traffic_routing: TrafficRouting | None = Field(
        default=None, description="How canary traffic is split; default: replicas (share of ready pods)."
    )

    @model_validator(mode="after")
    def _template_shape(self) -> ModelDeploymentSpec:
        if self.template is not None:
            extra = set(self.template) - {"metadata", "spec"}
            if extra:
                raise ValueError(f"template: unknown keys {sorted(extra)}; a PodTemplateSpec has metadata and spec")
        if self.strategy and self.strategy.canary:
            if self.analysis is None and any(s.analysis is not None for s in self.strategy.canary.steps):
                raise ValueError("strategy.canary.steps: an analysis step needs spec.analysis")
        if self.strategy and self.strategy.blue_green and self.traffic_routing and not self.traffic_routing.replicas:
            raise ValueError("trafficRouting: blueGreen switches the model Service; only replicas routing applies")
        return self
