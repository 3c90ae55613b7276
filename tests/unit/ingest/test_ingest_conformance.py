"""The conformance suite (D36): every public sample message in tests/data, with the outcome
tests/data/conformance.json expects of it (accepted, or refused with a reason) and why. Prints
the figure: valid samples accepted of all valid ones, invalid ones refused of all invalid ones."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ingest.domain.files import split_feed
from ingest.domain.messages import FeedFormat, parse_message
from ingest.domain.model import ParsedMessage, Rejected

DATA = Path(__file__).resolve().parents[2] / "data"
RECEIVED = dt.date(2026, 3, 4)
SAMPLES: list[dict[str, Any]] = json.loads((DATA / "conformance.json").read_text())["samples"]


def feed_format(path: Path) -> FeedFormat:
    return "fhir" if path.suffix in (".json", ".ndjson") else "hl7"


def messages(sample: dict[str, Any]) -> list[bytes]:
    path = DATA / sample["file"]
    raw = path.read_bytes()
    if sample["unit"] == "feed":
        return [m.value for m in split_feed(feed_format(path), raw)]
    return [raw]


@dataclass(frozen=True)
class Outcome:
    reason: str  # "accepted" or the reason code
    parsed: ParsedMessage | None


def outcome(sample: dict[str, Any], raw: bytes) -> Outcome:
    try:
        parsed = parse_message(feed_format(DATA / sample["file"]), raw, None, RECEIVED)
    except Rejected as rejected:
        return Outcome(rejected.reason_code, None)
    return Outcome("accepted", parsed)


def test_every_sample_file_is_in_the_expectations_and_every_expectation_has_its_file() -> None:
    listed = {s["file"] for s in SAMPLES}
    on_disk = {
        str(p.relative_to(DATA))
        for folder in ("fhir-r4", "hl7v2", "derived/fhir-r4", "derived/hl7v2")
        for p in (DATA / folder).iterdir()
        if p.is_file()
    }
    assert listed == on_disk
    assert all(s["why"] and isinstance(s["valid"], bool) for s in SAMPLES)


@pytest.mark.parametrize("sample", SAMPLES, ids=[s["file"] for s in SAMPLES])
def test_sample_has_its_expected_outcome(sample: dict[str, Any]) -> None:
    units = messages(sample)
    assert units, "the sample holds no message"
    for raw in units:
        result = outcome(sample, raw)
        assert result.reason == sample["expect"], sample["why"]
        if result.parsed is None:
            continue
        parts = result.parsed.parts()
        if "patients" in sample:
            assert len(parts) == sample["patients"]
        if "events" in sample:
            assert sum(len(p.events) for p in parts) == sample["events"]


def test_conformance_figure(capsys: pytest.CaptureFixture[str]) -> None:
    valid = [s for s in SAMPLES if s["valid"]]
    invalid = [s for s in SAMPLES if not s["valid"]]

    def met(sample: dict[str, Any], wanted: bool) -> bool:
        accepted = all(outcome(sample, raw).reason == "accepted" for raw in messages(sample))
        refused = all(outcome(sample, raw).reason != "accepted" for raw in messages(sample))
        return accepted if wanted else refused

    accepted_valid = sum(met(s, True) for s in valid)
    refused_invalid = sum(met(s, False) for s in invalid)
    as_expected = sum(
        all(outcome(s, raw).reason == s["expect"] for raw in messages(s)) for s in SAMPLES
    )
    with capsys.disabled():
        print(
            f"\nconformance: valid accepted {accepted_valid}/{len(valid)}, "
            f"invalid refused {refused_invalid}/{len(invalid)}, "
            f"as expected {as_expected}/{len(SAMPLES)} samples"
        )
    # Every invalid sample is refused; the valid ones refused are refused by a written rule
    # (their 'why' in conformance.json says which).
    assert refused_invalid == len(invalid)
    assert as_expected == len(SAMPLES)
