"""Release policies: what an approved project may receive, how it is coarsened, and under which approval.

One JSON file per dataset in the policy directory. Anything the pseudonymizer could not enforce
exactly (an unknown field, record type, topic or transform) is refused at start-up with a message
naming the file and the problem: a policy that silently released more than approved would be worse
than no release.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Literal

from biostream.release_vocabulary import RELEASABLE_FIELDS, RELEASABLE_RECORD_TYPES
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

_TOPIC = re.compile(r"^curated\.[a-z0-9][a-z0-9-]{1,62}$")


class PolicyError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DateShift(_Strict):
    """Every event date of a person moves by the same keyed offset in [-max_days, +max_days]."""

    method: Literal["shift"]
    max_days: int = Field(ge=1, le=365)


class DateOther(_Strict):
    method: Literal["keep", "month", "drop"]


class Generalisation(_Strict):
    birth: Literal["year", "age_band_5", "drop"] = "age_band_5"
    sex: Literal["keep", "drop"] = "keep"
    address: Literal["province", "district", "drop"] = "province"
    postal_digits: int = Field(default=0, ge=0, le=3, description="leading postal-code digits")
    event_date: DateShift | DateOther = Field(
        default=DateOther(method="month"), discriminator="method"
    )

    @property
    def date_method(self) -> str:
        return self.event_date.method

    @property
    def shift_days(self) -> int:
        return self.event_date.max_days if isinstance(self.event_date, DateShift) else 0


class KAnonymity(_Strict):
    """Records of a quasi-identifier class with fewer than ``min_k`` persons wait; see README."""

    min_k: int = Field(default=1, ge=1, le=1000)
    max_hold_hours: float = Field(default=168.0, gt=0)


APPROVAL_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{2,63}$"


class ReidentificationApproval(_Strict):
    """D35: one decision of the data-access board allowing this dataset's pseudonyms to be
    traced back to persons, for a stated purpose, from ``granted`` to ``expires`` (both days
    included). A board grants it apart from the release: releasing pseudonymized data does not
    allow reversing it (PIPA art. 28-5)."""

    ref: str = Field(pattern=APPROVAL_REF_PATTERN, description="the board's reference")
    purpose: str = Field(min_length=1)
    granted: dt.date
    expires: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> ReidentificationApproval:
        if self.expires < self.granted:
            raise ValueError(f"re-identification approval {self.ref}: expires before granted")
        return self


class ReleasePolicy(_Strict):
    dataset: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    version: str = Field(min_length=1)
    approval_ref: str = Field(min_length=1, description="IRB/DRB approval reference")
    purpose: str = Field(min_length=1)
    pseudonym_domain: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    key_version: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
    target_topic: str | None = None
    record_types: frozenset[str]
    fields: frozenset[str]
    generalisation: Generalisation = Generalisation()
    free_text: Literal["drop", "scrub"] = "drop"
    k_anonymity: KAnonymity = KAnonymity()
    consent_required: bool = False
    # D35: the approvals on record that allow re-identification; none: it is never allowed.
    reidentification: tuple[ReidentificationApproval, ...] = ()

    @model_validator(mode="after")
    def _known_names(self) -> ReleasePolicy:
        unknown_types = self.record_types - RELEASABLE_RECORD_TYPES
        if unknown_types:
            raise ValueError(f"unknown record types {sorted(unknown_types)}")
        unknown_fields = self.fields - RELEASABLE_FIELDS
        if unknown_fields:
            raise ValueError(
                f"unknown fields {sorted(unknown_fields)} (releasable: {sorted(RELEASABLE_FIELDS)})"
            )
        if self.target_topic is not None and not _TOPIC.match(self.target_topic):
            raise ValueError(f"unknown target topic {self.target_topic!r}: must be curated.<name>")
        refs = [a.ref for a in self.reidentification]
        if len(set(refs)) != len(refs):
            raise ValueError("reidentification: an approval reference is listed twice")
        if self.approval_ref in refs:
            raise ValueError(
                "reidentification: the release approval is not a re-identification approval"
            )
        return self

    @property
    def policy_version(self) -> str:
        return f"{self.dataset}@{self.version}"

    @property
    def topic(self) -> str:
        """Target topic without the deployment prefix."""
        return self.target_topic or f"curated.{self.dataset}"

    @property
    def key_id(self) -> str:
        return f"{self.pseudonym_domain}/{self.key_version}"


def load_policy(path: Path) -> ReleasePolicy:
    """D-pseudonymizer-1: refuses, with a message naming the problem, any policy it cannot
    enforce exactly."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise PolicyError(f"{path}: cannot read policy ({type(error).__name__})") from None
    return parse_policy(raw, str(path))


def parse_policy(raw: object, where: str) -> ReleasePolicy:
    """D-pseudonymizer-1: a policy document (a file's, or a signed version's from the policy
    topic, D46) validated exactly, or ``PolicyError`` naming ``where`` and every problem."""
    try:
        return ReleasePolicy.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            (".".join(str(p) for p in e["loc"]) + ": " if e["loc"] else "")
            + str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        )
        raise PolicyError(f"{where}: {problems}") from None


def load_policies(directory: Path, allow_none: bool = False) -> list[ReleasePolicy]:
    """D-pseudonymizer-1: every ``*.json`` policy in ``directory``, all served by one process;
    datasets and target topics must be unique. ``allow_none``: a directory without policies
    is fine (D46: the datasets come from the policy topic)."""
    if not directory.is_dir():
        if allow_none:
            return []
        raise PolicyError(f"{directory}: policy directory not found")
    policies = [load_policy(path) for path in sorted(directory.glob("*.json"))]
    if not policies and not allow_none:
        raise PolicyError(f"{directory}: no policy files (*.json)")
    for attribute in ("dataset", "topic"):
        values = [getattr(p, attribute) for p in policies]
        duplicates = sorted({v for v in values if values.count(v) > 1})
        if duplicates:
            raise PolicyError(
                f"{directory}: {attribute} used by more than one policy: {duplicates}"
            )
    return policies
