"""What the decisions see of the cluster: one ``RevisionState`` per Deployment the ModelDeployment owns."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RevisionState:
    """The observed state of one revision's Deployment.

    ``available`` is True once the Deployment controller has seen the current spec and every desired pod is updated
    and available (the same test ``kubectl rollout status`` makes). ``failure`` holds the message of a
    ``ProgressDeadlineExceeded`` condition, if any.
    """

    revision: str
    desired: int = 0
    current: int = 0
    ready: int = 0
    updated: int = 0
    available_replicas: int = 0
    available: bool = False
    failure: str | None = None


@dataclass(frozen=True)
class Observed:
    """All revisions of one ModelDeployment found in the cluster, keyed by revision."""

    revisions: dict[str, RevisionState] = field(default_factory=dict)

    def get(self, revision: str | None) -> RevisionState | None:
        return self.revisions.get(revision) if revision else None

    @property
    def current(self) -> int:
        return sum(r.current for r in self.revisions.values())

    @property
    def ready(self) -> int:
        return sum(r.ready for r in self.revisions.values())
