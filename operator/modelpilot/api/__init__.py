"""The ``modelpilot.io/v1alpha1`` ``ModelDeployment`` API as pydantic models; the CRD is generated from them."""

from modelpilot.api.constants import API_VERSION, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from modelpilot.api.spec import (
    AutoscalingSpec,
    EnvVar,
    ModelDeploymentSpec,
    ModelFormat,
    ModelSpec,
    ResourceRequirements,
    ServerSpec,
)
from modelpilot.api.status import Condition, ConditionStatus, ModelDeploymentStatus, Phase

__all__ = [
    "API_VERSION",
    "GROUP",
    "KIND",
    "PLURAL",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "AutoscalingSpec",
    "Condition",
    "ConditionStatus",
    "EnvVar",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ModelFormat",
    "ModelSpec",
    "Phase",
    "ResourceRequirements",
    "ServerSpec",
]
