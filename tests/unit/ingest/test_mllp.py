"""D37: MLLP framing, the header the listener reads and the ACK it answers with. The ACKs are
read back with python-hl7, an HL7 library the project did not write."""

from __future__ import annotations

import datetime as dt

import hl7
import pytest
from ingest.domain.mllp import (
    Frame,
    FrameReader,
    FramingError,
    HeaderRefused,
    RecentControlIds,
    acknowledgement,
    frame,
    read_header,
)

NOW = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)
ADT = (
    b"MSH|^~\\&|EPIC|SNUH|BIOSTREAM|KBBP|20261204030000||ADT^A01^ADT_A01|MSG00001|P|2.5.1\r"
    b"PID|1||12345^^^SNUH^MR||\xed\x99\x8d^\xea\xb8\xb8\xeb\x8f\x99||19971013|M\r"
)


def events(reader: FrameReader, *chunks: bytes) -> list[Frame | FramingError]:
    found: list[Frame | FramingError] = []
    for chunk in chunks:
        found += reader.feed(chunk)
    return found


def test_a_frame_split_anywhere_across_reads_is_one_message() -> None:
    data = frame(ADT) + b"\r\n" + frame(ADT.replace(b"MSG00001", b"MSG00002"))
    for cut in range(1, len(data)):
        found = events(FrameReader(10_000), data[:cut], data[cut:])
        assert [e for e in found if isinstance(e, Frame)] == [
            Frame(ADT), Frame(ADT.replace(b"MSG00001", b"MSG00002"))
        ], cut  # fmt: skip
        assert not [e for e in found if isinstance(e, FramingError)]


def test_stray_bytes_are_one_error_and_the_next_frame_still_arrives() -> None:
    found = events(FrameReader(10_000), b"GET / HTTP/1.1\r\n" + frame(ADT))
    assert [type(e) for e in found] == [FramingError, Frame]
    assert isinstance(found[0], FramingError) and found[0].code == "MLLP_OUTSIDE_FRAME"


def test_a_new_start_inside_a_frame_ends_it_as_an_error_and_keeps_the_new_one() -> None:
    found = events(FrameReader(10_000), b"\x0bMSH|half a message" + frame(ADT))
    assert isinstance(found[0], FramingError) and found[0].code == "MLLP_FRAME_INTERRUPTED"
    assert found[1:] == [Frame(ADT)]


def test_an_overlong_frame_is_refused_without_keeping_its_bytes_and_reading_resumes() -> None:
    reader = FrameReader(1024)
    found = events(reader, b"\x0b" + b"X" * 5000, b"\x1c\r" + frame(ADT))
    assert isinstance(found[0], FramingError) and found[0].code == "MLLP_FRAME_TOO_LONG"
    assert found[0].length == 5000
    assert found[1:] == [Frame(ADT)]
    assert reader.buffered == 0


def test_an_end_block_without_its_carriage_return_still_ends_the_frame() -> None:
    found = events(FrameReader(10_000), b"\x0b" + ADT + b"\x1c" + frame(ADT))
    assert found == [Frame(ADT), Frame(ADT)]


def test_a_connection_closed_inside_a_frame_is_reported() -> None:
    reader = FrameReader(10_000)
    assert events(reader, b"\x0bMSH|^~\\&|unfinished") == []
    [error] = reader.at_end()
    assert error.code == "MLLP_FRAME_UNFINISHED"


def test_the_header_names_sender_type_and_control_id() -> None:
    header = read_header(ADT)
    assert (header.sending_facility, header.message_type, header.control_id, header.version) == (
        "SNUH", "ADT^A01^ADT_A01", "MSG00001", "2.5.1"
    )  # fmt: skip
    assert header.trigger == "A01"


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"PID|1||12345", "200"),
        (b"MSHA^~\\&|X", "200"),
        (b"MSH|^~\\&|EPIC|SNUH|||20261204||ADT^A01||P|2.5", "101"),
    ],
)
def test_a_frame_that_is_not_an_acknowledgeable_message_is_refused(
    payload: bytes, code: str
) -> None:
    with pytest.raises(HeaderRefused) as refused:
        read_header(payload)
    assert refused.value.error_code == code


def test_the_ack_answers_the_sender_in_its_own_separators() -> None:
    message = ADT.replace(b"|", b"#").replace(b"MSH#^~\\&", b"MSH#^~\\&")
    header = read_header(message)
    ack = hl7.parse(acknowledgement(header, "AA", "ACK1", NOW).decode().replace("#", "|"))
    assert str(ack.segment("MSA")[1]) == "AA"
    assert str(ack.segment("MSA")[2]) == "MSG00001"
    msh = ack.segment("MSH")
    # Sender and receiver swapped, the trigger echoed.
    assert (str(msh[3]), str(msh[4]), str(msh[5]), str(msh[6])) == (
        "BIOSTREAM",
        "KBBP",
        "EPIC",
        "SNUH",
    )
    assert str(msh[9]) == "ACK^A01^ACK"
    assert str(msh[10]) == "ACK1" and str(msh[12]) == "2.5.1"


def test_a_refusal_carries_msa_and_err_with_the_hl7_condition_code() -> None:
    header = read_header(ADT)
    ack = hl7.parse(
        acknowledgement(header, "AE", "ACK2", NOW, "could not store | resend", "207").decode()
    )
    assert str(ack.segment("MSA")[1]) == "AE"
    err = ack.segment("ERR")
    assert str(err[3][0][0]) == "207" and str(err[3][0][2]) == "HL70357"
    # The separators of the message never appear inside the listener's own text.
    assert "could not store  resend" in str(ack.segment("MSA")[3])


def test_an_ack_without_a_readable_header_still_parses() -> None:
    ack = hl7.parse(
        acknowledgement(None, "AR", "ACK3", NOW, "data outside an MLLP frame", "200").decode()
    )
    assert str(ack.segment("MSA")[1]) == "AR" and str(ack.segment("MSA")[2]) == ""


def test_recent_control_ids_forget_the_oldest_beyond_their_capacity() -> None:
    recent = RecentControlIds(2)
    for control_id in ("a", "b", "a", "c"):
        recent.remember(control_id)
    assert "a" in recent and "c" in recent and "b" not in recent


def test_an_ack_never_quotes_the_message_it_answers() -> None:
    """Planted canaries: a refused message's ACK carries the listener's own text only."""
    canary = b"MSH|^~\\&|EPIC|SNUH|||20261204||ADT^A04||P|2.5.1\rPID|1||9^^^SNUH^MR||\xec\xba\x90\xeb\x82\x98\xeb\xa6\xac\xec\x95\x84^x||19850321|F|||canary street 7\r"
    with pytest.raises(HeaderRefused) as refused:
        read_header(canary)
    ack = acknowledgement(None, "AR", "A1", NOW, str(refused.value), refused.value.error_code)
    for value in ("캐나리아".encode(), b"canary street", b"19850321"):
        assert value not in ack
