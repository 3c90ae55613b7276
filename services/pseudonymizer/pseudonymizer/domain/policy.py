"""Release policies: what an approved project may receive, and under which approval."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RELEASABLE_RESOURCE_TYPES = frozenset(
    {"Condition", "Observation", "Encounter", "MedicationRequest", "Procedure", "Specimen"}
)


class PolicyError(ValueError):
    pass


class ReleasePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    version: str = Field(min_length=1)
    approval_ref: str = Field(min_length=1, description="IRB/DRB approval reference")
    purpose: str = Field(min_length=1)
    key_version: str = Field(min_length=1)
    resource_types: frozenset[str]

    @property
    def policy_version(self) -> str:
        return f"{self.dataset}@{self.version}"


def load_policy(path: Path) -> ReleasePolicy:
    """Refuses, with a message naming the problem, any policy it cannot enforce exactly."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PolicyError(f"{path}: cannot read policy ({type(error).__name__})") from None
    try:
        policy = ReleasePolicy.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise PolicyError(f"{path}: {problems}") from None
    unknown = policy.resource_types - RELEASABLE_RESOURCE_TYPES
    if unknown:
        raise PolicyError(f"{path}: unknown resource types {sorted(unknown)}")
    return policy
