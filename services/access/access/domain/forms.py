"""What an application says (D45): who applies, why, under which IRB approval, for which data in
which words (the release-policy vocabulary of ``biostream.release_vocabulary``), under which
DUO terms; and the conditions a board attaches to an approval, applied to the request.

Applicants and team members are account ids of the programme's identity system, never names:
the access events go into the audit ledger, which keeps everything forever.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Annotated, Any, Literal

from biostream.release_vocabulary import (
    FREE_TEXT_FIELD,
    MAX_DATE_SHIFT_DAYS,
    MAX_MIN_K,
    MAX_POSTAL_DIGITS,
    RELEASABLE_FIELDS,
    RELEASABLE_RECORD_TYPES,
    AddressGeneralisation,
    BirthGeneralisation,
    EventDateMethod,
    FreeTextHandling,
    SexGeneralisation,
)
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from access.domain.board import IDENTIFIER, INSTITUTION

ApplicationKind = Literal["dataset", "renewal", "reidentification"]
DATASET = r"^[a-z0-9][a-z0-9-]{1,62}$"
SHA256_HEX = r"^[0-9a-f]{64}$"
MAX_MONTHS = 60
# A set of names, written sorted: an event's JSON is the same bytes in every process (the
# ledger hashes it) and a rebuilt state shows the same order.
Names = Annotated[frozenset[str], PlainSerializer(sorted, return_type=list[str])]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TeamMember(_Strict):
    account: str = Field(pattern=IDENTIFIER)
    role: Literal["investigator", "analyst", "signing_official", "it_security"] = "analyst"


class IrbApproval(_Strict):
    """The applicant's institutional IRB approval (Bioethics and Safety Act): its number, date
    and the SHA-256 of the approval document (the document itself stays with the applicant)."""

    number: str = Field(min_length=1, max_length=64)
    date: dt.date
    document_sha256: str = Field(pattern=SHA256_HEX)


class Attachment(_Strict):
    name: str = Field(min_length=1, max_length=128)
    sha256: str = Field(pattern=SHA256_HEX)


class Generalisation(_Strict):
    birth: BirthGeneralisation = "age_band_5"
    sex: SexGeneralisation = "keep"
    address: AddressGeneralisation = "province"
    postal_digits: int = Field(default=0, ge=0, le=MAX_POSTAL_DIGITS)
    event_date: EventDateMethod = "month"
    shift_days: int = Field(default=0, ge=0, le=MAX_DATE_SHIFT_DAYS)

    @model_validator(mode="after")
    def _shift_has_days(self) -> Generalisation:
        if (self.event_date == "shift") != (self.shift_days > 0):
            raise ValueError("event_date shift needs shift_days > 0, and only shift takes them")
        return self

    def policy(self) -> dict[str, Any]:
        """As the pseudonymizer's release policy writes it."""
        date: dict[str, Any] = {"method": self.event_date}
        if self.event_date == "shift":
            date["max_days"] = self.shift_days
        return {
            "birth": self.birth,
            "sex": self.sex,
            "address": self.address,
            "postal_digits": self.postal_digits,
            "event_date": date,
        }


class RequestedData(_Strict):
    """A draft release policy: the data requested, in the words the pseudonymizer enforces."""

    dataset: str = Field(pattern=DATASET)
    record_types: Names = Field(min_length=1)
    fields: Names = Field(min_length=1)
    generalisation: Generalisation = Generalisation()
    free_text: FreeTextHandling = "drop"
    min_k: int = Field(default=5, ge=1, le=MAX_MIN_K)
    consent_required: bool = True
    duration_months: int = Field(default=12, ge=1, le=MAX_MONTHS)

    @model_validator(mode="after")
    def _known_words(self) -> RequestedData:
        unknown_types = self.record_types - RELEASABLE_RECORD_TYPES
        if unknown_types:
            raise ValueError(f"unknown record types {sorted(unknown_types)}")
        unknown_fields = self.fields - RELEASABLE_FIELDS
        if unknown_fields:
            raise ValueError(
                f"unknown fields {sorted(unknown_fields)} (releasable: {sorted(RELEASABLE_FIELDS)})"
            )
        return self


class ReidentificationRequest(_Strict):
    """Which pseudonyms of which approved dataset are to be traced back, and why (D35)."""

    dataset: str = Field(pattern=DATASET)
    pseudonyms: tuple[str, ...] = Field(min_length=1, max_length=1000)
    reason: str = Field(min_length=1, max_length=2000)


class ApplicationForm(_Strict):
    applicant: str = Field(pattern=IDENTIFIER)
    institution: str = Field(pattern=INSTITUTION)
    team: tuple[TeamMember, ...] = ()
    title: str = Field(min_length=1, max_length=300)
    purpose: str = Field(min_length=1, max_length=5000)
    lay_summary: str = Field(min_length=1, max_length=5000)
    irb: IrbApproval
    requested: RequestedData | None = None
    reidentification: ReidentificationRequest | None = None
    duo_codes: tuple[str, ...] = Field(min_length=1)
    attachments: tuple[Attachment, ...] = ()

    @field_validator("duo_codes")
    @classmethod
    def _codes_are_words(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(code.strip() for code in codes)


def form_problem(kind: ApplicationKind, form: ApplicationForm) -> str | None:
    """D45: what a form of this kind lacks or must not have, or None. A dataset or renewal
    application requests data (a draft release policy); a re-identification request names an
    approved dataset's pseudonyms and requests no data."""
    if kind == "reidentification":
        if form.reidentification is None or form.requested is not None:
            return "a re-identification application names its pseudonyms and requests no data"
    elif form.requested is None or form.reidentification is not None:
        return f"a {kind} application requests data (requested) and no re-identification"
    if len({m.account for m in form.team}) != len(form.team):
        return "a team member is listed twice"
    return None


class Conditions(_Strict):
    """D45: what a board's approval attaches, machine-readable where it can be, plus free text."""

    min_k: int | None = Field(default=None, ge=2, le=MAX_MIN_K)
    no_free_text: bool = False
    expires_in_months: int | None = Field(default=None, ge=1, le=MAX_MONTHS)
    fields_removed: Names = frozenset()
    consent_required: bool = False
    text: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _known_fields(self) -> Conditions:
        unknown = self.fields_removed - RELEASABLE_FIELDS
        if unknown:
            raise ValueError(f"fields_removed: unknown fields {sorted(unknown)}")
        return self


def add_months(when: dt.datetime, months: int) -> dt.datetime:
    """The same day ``months`` later (the month's last day when it is shorter)."""
    index = when.month - 1 + months
    year, month = when.year + index // 12, index % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def access_months(requested: RequestedData, conditions: Conditions) -> int:
    """D45: how long an approval lasts: what was requested, shortened by the board's condition."""
    if conditions.expires_in_months is None:
        return requested.duration_months
    return min(requested.duration_months, conditions.expires_in_months)


def approved_policy(
    application_id: str,
    requested: RequestedData,
    purpose: str,
    conditions: Conditions,
    pseudonym_domain: str,
    version: int,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
) -> dict[str, Any]:
    """D45: the release policy an approval stands for: the request with the board's conditions
    applied (k raised, fields removed, free text dropped, consent required), in the
    pseudonymizer's policy words; ``approval_ref`` is the application. Conditions only ever
    narrow a request."""
    fields = set(requested.fields) - set(conditions.fields_removed)
    free_text = requested.free_text
    if conditions.no_free_text:
        fields.discard(FREE_TEXT_FIELD)
        free_text = "drop"
    return {
        "dataset": requested.dataset,
        "version": str(version),
        "approval_ref": application_id,
        "purpose": purpose,
        "pseudonym_domain": pseudonym_domain,
        "record_types": sorted(requested.record_types),
        "fields": sorted(fields),
        "generalisation": requested.generalisation.policy(),
        "free_text": free_text,
        "k_anonymity": {"min_k": max(requested.min_k, conditions.min_k or 1)},
        "consent_required": requested.consent_required or conditions.consent_required,
        "valid_from": valid_from.isoformat(),
        "valid_until": valid_until.isoformat(),
    }
