"""The one place the ER7 reader departs from python-hl7 on purpose."""

from __future__ import annotations

from ingest.domain.hl7v2_reader import MAX_FORMAT_REPEAT, Er7Message


def test_a_formatting_repeat_count_cannot_blow_up_a_value() -> None:
    """The one place the reader departs from python-hl7: a repeat escape is capped, so a few
    bytes from a hospital cannot make the service build megabytes of spaces."""
    text = (
        "MSH|^~\\&|HIS|H001|BIOSTREAM|NBB|20260101||ADT^A01|X1|P|2.5\rNTE|1||a\\.sk100000000\\b\r"
    )
    segment = Er7Message(text).segment("NTE")
    assert segment is not None
    assert segment.value(3) == "a" + " " * MAX_FORMAT_REPEAT + "b"
    short = Er7Message(text.replace("100000000", "3")).segment("NTE")
    assert short is not None and short.value(3) == "a   b"
