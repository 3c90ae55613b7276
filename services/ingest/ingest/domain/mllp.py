"""D37: HL7 v2 over MLLP (the framing every hospital interface engine speaks), the rules of the
listener: how bytes become frames, which frames are answered how, and the acknowledgement.

MLLP (HL7 v2 Implementation Guide, Appendix C): a message is ``<VT> message <FS><CR>``, VT =
0x0B, FS = 0x1C, CR = 0x0D; the receiver answers each message with an ACK in the same framing.
Pure: bytes in, frames and decisions out; the time for the ACK's MSH-7 is given.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

START_BLOCK = 0x0B
END_BLOCK = 0x1C
CARRIAGE_RETURN = 0x0D
# Between frames, senders put line breaks or nothing; anything else is outside a frame.
_BETWEEN_FRAMES_BYTES = b"\r\n\t "

AckCode = Literal["AA", "AE", "AR"]
Outcome = Literal["accepted", "duplicate", "refused", "failed"]


@dataclass(frozen=True, slots=True)
class Frame:
    """One complete framed message, exactly the bytes between VT and FS."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class FramingError:
    """Bytes that were not a frame: the listener answers them and goes on with the next frame."""

    code: str  # MLLP_OUTSIDE_FRAME, MLLP_FRAME_TOO_LONG, MLLP_FRAME_INTERRUPTED, MLLP_FRAME_UNFINISHED
    reason: str
    length: int


class FrameReader:
    """D37: incremental MLLP framing. Bytes outside a frame (other than line breaks) become one
    ``FramingError`` per run of them; a new start block inside an unfinished frame ends that
    frame as an error and starts the next one; a frame longer than ``max_bytes`` is an error
    as soon as it is too long (its bytes are not kept) and the reader resynchronises at the next
    start block. So one bad sender frame never closes the connection nor swallows the next."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._frame: bytearray | None = None
        self._oversized = 0  # bytes skipped of a frame that became too long
        self._outside = 0  # bytes seen outside any frame since the last event
        self._end_seen = False  # FS seen, waiting for CR

    @property
    def buffered(self) -> int:
        return len(self._frame) if self._frame is not None else 0

    def feed(self, data: bytes) -> list[Frame | FramingError]:
        # Scans with bytes.find, not byte by byte: a 64 KiB read costs a few C-level searches.
        events: list[Frame | FramingError] = []
        i, n = 0, len(data)
        while i < n:
            if self._end_seen:
                self._end_seen = False
                self._finish(events)
                if data[i] == CARRIAGE_RETURN:
                    i += 1
                # else FS without CR (tolerated: some senders omit it): the byte is read again,
                # outside the frame that just ended.
                continue
            if self._frame is None and not self._oversized:  # between frames
                start = data.find(START_BLOCK, i)
                stop = n if start < 0 else start
                self._outside += len(data[i:stop].translate(None, _BETWEEN_FRAMES_BYTES))
                if start < 0:
                    break
                self._flush_outside(events)
                self._frame, i = bytearray(), start + 1
                continue
            end = data.find(END_BLOCK, i)
            restart = data.find(START_BLOCK, i, end if end >= 0 else n)
            mark = restart if restart >= 0 else end
            stop = n if mark < 0 else mark
            if self._oversized:
                self._oversized += stop - i
            else:
                assert self._frame is not None
                self._frame += data[i:stop]
                if len(self._frame) > self.max_bytes:
                    self._oversized, self._frame = len(self._frame), None
            if mark < 0:
                break
            if mark == restart:
                events.append(
                    self._error_of_current(
                        "MLLP_FRAME_INTERRUPTED", "a new frame began before this one ended"
                    )
                )
                self._frame, self._oversized = bytearray(), 0
            else:
                self._end_seen = True
            i = mark + 1
        return events

    def _finish(self, events: list[Frame | FramingError]) -> None:
        if self._oversized:
            events.append(
                FramingError(
                    "MLLP_FRAME_TOO_LONG",
                    f"message longer than {self.max_bytes} bytes",
                    self._oversized,
                )
            )
        elif self._frame is not None:
            events.append(Frame(bytes(self._frame)))
        self._frame, self._oversized = None, 0

    def _error_of_current(self, code: str, reason: str) -> FramingError:
        length = self._oversized or (len(self._frame) if self._frame is not None else 0)
        return FramingError(code, reason, length)

    def _flush_outside(self, events: list[Frame | FramingError]) -> None:
        if self._outside:
            events.append(
                FramingError("MLLP_OUTSIDE_FRAME", "data outside an MLLP frame", self._outside)
            )
            self._outside = 0

    def at_end(self) -> list[FramingError]:
        """The connection closed: what is left is an unfinished frame or stray bytes."""
        events: list[Frame | FramingError] = []
        self._flush_outside(events)
        if self._frame is not None or self._oversized:
            events.append(
                self._error_of_current(
                    "MLLP_FRAME_UNFINISHED", "the connection closed inside a frame"
                )
            )
        self._frame, self._oversized, self._end_seen = None, 0, False
        return [e for e in events if isinstance(e, FramingError)]


@dataclass(frozen=True, slots=True)
class Header:
    """What the listener reads of a message: its MSH, enough to acknowledge and deduplicate."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_type: str  # MSH-9 as sent, e.g. ADT^A01^ADT_A01
    control_id: str  # MSH-10
    processing_id: str  # MSH-11
    version: str  # MSH-12

    @property
    def trigger(self) -> str:
        parts = self.message_type.split(self.encoding_characters[:1] or "^")
        return parts[1] if len(parts) > 1 else ""


class HeaderRefused(ValueError):
    """A frame that is not an HL7 v2 message the listener can acknowledge as received."""

    def __init__(self, error_code: str, text: str) -> None:
        super().__init__(text)
        self.error_code = error_code  # HL7 table 0357


# HL7 table 0357 (message error condition codes) used by the listener.
REQUIRED_FIELD_MISSING = "101"
UNSUPPORTED_MESSAGE = "200"
APPLICATION_INTERNAL_ERROR = "207"

_SEPARATOR_OK = re.compile(r"[^\w\s]")


def read_header(payload: bytes) -> Header:
    """D37: the MSH of a framed message. Refused: no MSH segment first, a separator that is a
    letter, digit or space, or no MSH-10 control id (without it the sender cannot match the ACK
    nor the platform recognise a resend)."""
    text = payload.decode("latin-1")  # bytes 1:1: the header is ASCII; the body is not read
    if not text.startswith("MSH") or len(text) < 8:
        raise HeaderRefused(UNSUPPORTED_MESSAGE, "the message does not begin with an MSH segment")
    separator = text[3]
    if not _SEPARATOR_OK.fullmatch(separator):
        raise HeaderRefused(UNSUPPORTED_MESSAGE, "MSH-1 is not a field separator")
    segment = re.split(r"[\r\n]", text, maxsplit=1)[0]
    fields = segment.split(separator)
    # fields[0] is "MSH", fields[1] MSH-2; MSH-n is fields[n - 1].

    def field(number: int) -> str:
        return fields[number - 1].strip() if len(fields) >= number else ""

    control_id = field(10)
    if not control_id:
        raise HeaderRefused(REQUIRED_FIELD_MISSING, "MSH-10 (message control id) is empty")
    return Header(
        field_separator=separator,
        encoding_characters=field(2) or "^~\\&",
        sending_application=field(3),
        sending_facility=field(4),
        receiving_application=field(5),
        receiving_facility=field(6),
        message_type=field(9),
        control_id=control_id,
        processing_id=field(11) or "P",
        version=field(12) or "2.5",
    )


def acknowledgement(
    header: Header | None,
    code: AckCode,
    ack_control_id: str,
    now: dt.datetime,
    text: str = "",
    error_code: str | None = None,
) -> bytes:
    """D37: the ACK of a message (original acknowledgement mode): MSH with sender and receiver
    swapped, MSA with the code and the message's control id, and for AE/AR an ERR naming the
    HL7 table 0357 condition. Without a readable header (a framing error), a standard MSH and an
    empty MSA-2. The text is the listener's own (never a value from the message), stripped of
    the message's separators."""
    sep = header.field_separator if header else "|"
    enc = header.encoding_characters if header else "^~\\&"
    component = enc[:1] or "^"
    clean = "".join(ch for ch in text if ch not in sep + enc)
    trigger = header.trigger if header else ""
    message_type = component.join(["ACK", trigger, "ACK"]) if trigger else "ACK"
    msh = [
        "MSH",
        enc,
        header.receiving_application if header else "BIOSTREAM",
        header.receiving_facility if header else "",
        header.sending_application if header else "",
        header.sending_facility if header else "",
        now.astimezone(dt.UTC).strftime("%Y%m%d%H%M%S+0000"),
        "",
        message_type,
        ack_control_id,
        header.processing_id if header else "P",
        header.version if header else "2.5",
    ]
    segments = [
        sep.join(msh),
        sep.join(["MSA", code, header.control_id if header else "", clean]),
    ]
    if code != "AA" and error_code is not None:
        segments.append(
            sep.join(["ERR", "", "", component.join([error_code, clean, "HL70357"]), "E"])
        )
    return "\r".join(segments).encode("latin-1", "replace") + b"\r"


def frame(message: bytes) -> bytes:
    return bytes([START_BLOCK]) + message + bytes([END_BLOCK, CARRIAGE_RETURN])


class RecentControlIds:
    """D37: the control ids of the messages this listener stored, the newest ``capacity`` of
    them, so that a resend (the sender missed the ACK) is acknowledged again without a second
    feed message. Only stored messages are remembered: a message answered AE is not, so that
    its resend is stored. Restarts forget; ingest's de-duplication (D25) still makes a resend
    after a restart one record."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def __contains__(self, control_id: object) -> bool:
        return control_id in self._ids

    def remember(self, control_id: str) -> None:
        self._ids[control_id] = None
        self._ids.move_to_end(control_id)
        while len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
