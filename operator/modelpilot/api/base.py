"""The common base of API models and the two schema markers the CRD needs beyond plain JSON Schema."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema
from pydantic.alias_generators import to_camel


def _k8s_camel(name: str) -> str:
    # Kubernetes spells acronyms in capitals: targetCPUUtilizationPercentage, gatewayAPI.
    return to_camel(name).replace("Cpu", "CPU").replace("Api", "API")


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected (a typo is an error, not a no-op)."""

    model_config = ConfigDict(
        alias_generator=_k8s_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=False,
        validate_default=False,
    )

    def to_k8s(self) -> dict[str, Any]:
        """The wire form: camelCase keys, unset optional fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


QUANTITY_RE = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def _check_quantity(value: int | str) -> int | str:
    if isinstance(value, str) and not QUANTITY_RE.match(value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 2, 1.5Gi)")
    return value


IntOrString = Annotated[int | str, WithJsonSchema({"x-kubernetes-int-or-string": True})]
Quantity = Annotated[
    int | str,
    AfterValidator(_check_quantity),
    WithJsonSchema({"x-kubernetes-int-or-string": True, "pattern": QUANTITY_RE.pattern}),
]


def free_form() -> WithJsonSchema:
    """An object whose content the API server keeps as written (e.g. an embedded PodTemplateSpec)."""
    return WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True})
