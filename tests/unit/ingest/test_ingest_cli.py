"""``ingest check``: local validation of feed files, one JSON line per message, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from ingest.__main__ import app
from typer.testing import CliRunner

A01 = (
    "MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260301093000||ADT^A01|A01-1|P|2.5\r"
    "PID|1||00012345^^^H009^MR||홍^길동||19971013|M\r"
)
BAD = "MSH|^~\\&|HIS|H009|BIOSTREAM|NBB|20260301093000||ADT^A24|A24-1|P|2.5\rPID|1||1\r"


def run(*args: str) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(app, list(args))
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def test_check_hl7_file_with_mllp_frames(tmp_path: Path) -> None:
    feed = tmp_path / "adt.hl7"
    feed.write_bytes(b"\x0b" + A01.encode() + b"\x1c\r\x0b" + BAD.encode() + b"\x1c\r")
    code, lines, _ = run("check", "--format", "hl7", str(feed))
    assert code == 1
    assert [line["accepted"] for line in lines] == [True, False]
    assert lines[0]["message_type"] == "ADT^A01"
    assert lines[1]["reason_code"] == "HL7_MESSAGE_TYPE_UNSUPPORTED"
    assert "홍" not in json.dumps(lines, ensure_ascii=False)


def test_check_all_accepted_exits_zero(tmp_path: Path) -> None:
    feed = tmp_path / "adt.hl7"
    feed.write_text(A01.replace("\r", "\n"))
    code, lines, _ = run("check", "--format", "hl7", str(feed))
    assert (code, len(lines)) == (0, 1)


def test_check_csv_with_mapping_file(tmp_path: Path) -> None:
    mapping = tmp_path / "H010.json"
    mapping.write_text(
        json.dumps(
            {
                "columns": {
                    "message_id": "no",
                    "patient_no": "mrn",
                    "full_name": "name",
                    "birth_date": "dob",
                },
                "date_format": "%Y%m%d",
            }
        )
    )
    feed = tmp_path / "x.csv"
    feed.write_text("no,mrn,name,dob\nR1,55,김민준,19900101\nR2,56,이서연,19901399\n")
    code, lines, _ = run("check", "--format", "csv", "--mapping", str(mapping), str(feed))
    assert code == 1
    assert [(line["message_id"], line["accepted"]) for line in lines] == [
        ("R1", True),
        ("R2", False),
    ]
    assert lines[1]["reason_code"] == "BIRTH_DATE_INVALID"


def test_unreadable_file_or_mapping_exits_two(tmp_path: Path) -> None:
    assert run("check", "--format", "hl7", str(tmp_path / "missing.hl7"))[0] == 2
    feed = tmp_path / "x.csv"
    feed.write_text("message_id,patient_no\n")
    assert (
        run("check", "--format", "csv", "--mapping", str(tmp_path / "no.json"), str(feed))[0] == 2
    )
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert run("check", "--format", "csv", "--mapping", str(broken), str(feed))[0] == 2


def test_unknown_format_exits_two(tmp_path: Path) -> None:
    feed = tmp_path / "x"
    feed.write_text("x")
    assert run("check", "--format", "xml", str(feed))[0] == 2


def test_publish_exits_two_before_connecting_when_a_file_or_the_hospital_is_bad(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "missing.hl7")
    assert run("publish", "--hospital", "H001", "--format", "hl7", missing)[0] == 2
    feed = tmp_path / "adt.hl7"
    feed.write_text(A01)
    assert run("publish", "--hospital", "bad code!", "--format", "hl7", str(feed))[0] == 2
