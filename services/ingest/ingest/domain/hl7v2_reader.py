"""A small, fast reader of HL7 v2 ER7 (pipe-and-hat) text: segments, fields, repetitions,
components and sub-components, escape sequences decoded.

It reads exactly what python-hl7 (``hl7.parse`` and ``Segment.extract_field``) reads, value for
value, including its handling of malformed input: the differential tests
(tests/unit/ingest/test_ingest_hl7_reader.py) hold it to that. It exists because python-hl7
builds a tree of list objects for every message and walks it on every field access, which was
most of ingest's CPU cost per message (docs/benchmarks/ingest.md, D-ingest-8). Here a segment is
split into fields once; repetitions, components and sub-components are split only on access,
with ``str.split`` on the one field read.

How python-hl7 reads a message, reproduced here:

* Segments are split on CR. The separators come from the message's first segment: MSH-1 is the
  field separator, MSH-2 the component, repetition, escape and sub-component characters (``~``,
  ``\\`` and ``&`` by default when MSH-2 is shorter).
* A segment named MSH, BHS or FHS keeps MSH-1 and MSH-2 as they are written (not split).
* A segment holding none of the separators is a single value: every field of it reads as empty.
* Escape sequences: ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` (the separators), ``\\H\\ \\N\\`` (``_``),
  ``\\Xhh..\\`` (characters by hex code), ``\\.br\\ \\.sp\\ \\.ce\\`` (CR), ``\\.fi\\ \\.nf\\``
  (nothing), ``\\.in\\ \\.ti\\`` (four spaces), ``\\.sk\\`` (a space), the dotted ones optionally
  followed by a repeat count; ``\\C..\\ \\M..\\`` and unknown sequences are dropped, and so is an
  unterminated one. MSH-1 and MSH-2 are not unescaped.
* A value that python-hl7 fails on (a repeat count that is not a number) reads as empty, as does
  any position that is not present.

Where ``hl7.parse`` raises, ``Er7Message`` raises ``Er7Unreadable``. That is so for a bad first
segment, for separators that python-hl7 cannot build a parse plan from (a carriage return among
them, or the sub-component separator repeating another one) once a field needs that plan, and for
a bare ``MSH``/``BHS``/``FHS`` segment that holds a separator character.

Nothing here logs: python-hl7 logs malformed escape sequences quoting the field's content.
"""

from __future__ import annotations

_HEADER_SEGMENTS = ("MSH", "BHS", "FHS")
_DOTTED = {
    ".br": "\r",
    ".sp": "\r",
    ".fi": "",
    ".nf": "",
    ".in": "    ",
    ".ti": "    ",
    ".sk": " ",
    ".ce": "\r",
}

# The longest run a formatting escape (``\\.sp5\\``, ``\\.sk3\\``) may expand to.
MAX_FORMAT_REPEAT = 1000


class Er7Unreadable(ValueError):
    """The text is not ER7 that python-hl7 would parse. The text names no value."""


class Er7Message:
    """D-ingest-8: one message read by the hand-written ER7 reader: ``segments`` in order, each an
    ``Er7Segment``, value for value what python-hl7 reads."""

    __slots__ = ("_escapes", "component", "escape", "field", "repetition", "segments", "sub")

    def __init__(self, text: str) -> None:
        text = text.strip()
        if text[:3] not in _HEADER_SEGMENTS or len(text) < 5:
            raise Er7Unreadable("the text does not start with a header segment")
        end = text.find(text[3], 4)
        declared = text[3:end]  # as python-hl7 does, also when ``end`` is -1
        if not declared:
            raise Er7Unreadable("MSH-1 and MSH-2 are missing")
        self.field = declared[0]
        self.component = declared[1] if len(declared) > 1 else "^"
        self.repetition = declared[2] if len(declared) > 2 else "~"
        self.escape = declared[3] if len(declared) > 3 else "\\"
        self.sub = declared[4] if len(declared) > 4 else "&"
        self._escapes: dict[str, str] | None = None
        separators = "\r" + self.field + self.repetition + self.component + self.sub
        # python-hl7 splits level n of the tree on separators[n] and asserts, when it builds the
        # plan for a level, that the level's separator appears first at that position.
        plans = tuple(separators.find(separators[n]) == n for n in range(5))
        lines = text.split("\r")
        self.segments = [Er7Segment(line, self) for line in lines]
        if not all(plans):
            self._check_plans(plans)
        for segment in self.segments:
            if segment.broken:
                raise Er7Unreadable("a header segment has no field separator")

    def segment(self, name: str) -> Er7Segment | None:
        """The first segment whose first field is exactly ``name``, None if there is none.
        Raises Er7Unreadable if the message has an empty segment, as python-hl7's
        ``Message.segment`` does (it reads the first character of every segment)."""
        found = None
        for segment in self.segments:
            if not segment.split and not segment.fields[0]:
                raise Er7Unreadable("the message has an empty segment")
            if found is None and segment.first == name:
                found = segment
        return found

    def _check_plans(self, plans: tuple[bool, ...]) -> None:
        """Raise where python-hl7 would build a parse plan that fails its assertion: the plan for
        a level is built for each part of a split at the level above."""
        if not plans[1]:
            raise Er7Unreadable("the field separator is a segment separator")
        deeper3 = (self.repetition, self.component, self.sub)
        deeper4 = (self.component, self.sub)
        for segment in self.segments:
            parts = segment.fields[segment.leaves :] if segment.split else []
            if parts and not plans[2]:
                raise Er7Unreadable("the repetition separator cannot be used")
            for part in parts:
                if not any(s in part for s in deeper3):
                    continue  # python-hl7 does not split this field
                if not plans[3]:
                    raise Er7Unreadable("the component separator cannot be used")
                for repetition in part.split(self.repetition):
                    if not plans[4] and any(s in repetition for s in deeper4):
                        raise Er7Unreadable("the sub-component separator cannot be used")

    def unescape(self, value: str) -> str:
        """python-hl7's ``unescape`` without an application map. May raise ValueError (a dotted
        sequence with a count that is not a number), as python-hl7 does."""
        escape = self.escape
        if not value or escape not in value:
            return value
        escapes = self._escapes
        if escapes is None:
            escapes = self._escapes = {
                "H": "_",
                "N": "_",
                "F": self.field,
                "R": self.repetition,
                "S": self.component,
                "T": self.sub,
                "E": escape,
                **_DOTTED,
            }
        parts = value.split(escape)
        out = [parts[0]]
        last = len(parts) - 1
        # Odd parts are sequences, even ones text; a sequence without its closing escape
        # character (the last part, when odd) is dropped.
        for index in range(1, last + 1):
            part = parts[index]
            if index % 2 == 0:
                out.append(part)
            elif index == last or not part:
                continue
            elif part in escapes:
                out.append(escapes[part])
            elif part[0] == "." and part[:3] in _DOTTED:
                # Capped: python-hl7 builds any count (``\\.sk100000000\\`` is 100 MB of spaces
                # from a 16-byte escape); a formatting repeat beyond this is never meaningful.
                out.append(_DOTTED[part[:3]] * min(int(part[3:]), MAX_FORMAT_REPEAT))
            elif part[0] == "X":
                digits = part[1:]
                try:
                    for offset in range(0, len(digits), 2):
                        out.append(chr(int(digits[offset : offset + 2], 16)))
                except (ValueError, OverflowError):
                    pass  # python-hl7 keeps the characters decoded before the bad pair
        return "".join(out)


class Er7Segment:
    """One segment. ``name`` is how hl7v2 names it (first field, stripped, upper case)."""

    __slots__ = ("broken", "fields", "first", "leaves", "message", "name", "raw_header", "split")

    def __init__(self, text: str, message: Er7Message) -> None:
        self.message = message
        self.broken = False
        self.raw_header = False
        if not (
            message.field in text
            or message.repetition in text
            or message.component in text
            or message.sub in text
        ):
            # Not split: python-hl7 keeps the whole text as the segment's only element.
            self.split = False
            self.fields = [text]
            self.leaves = 1
            self.first = text[:1]
            self.name = self.first.strip().upper()
            return
        self.split = True
        head = text[:3]
        if head in _HEADER_SEGMENTS:
            if len(text) < 4:
                self.broken = True
                self.fields, self.leaves, self.first, self.name = [], 0, "", ""
                return
            end = text.find(text[3], 4)
            rest = text[end + 1 :]
            self.fields = [head, text[3], text[4:end]]
            if rest:
                self.fields += rest.split(message.field)
            self.leaves = 3  # name, MSH-1 and MSH-2: single values, never split
            self.raw_header = head == "MSH"
            self.first = head
            self.name = head
            return
        self.fields = text.split(message.field)
        self.leaves = 0
        self.first = self.fields[0].split(message.repetition)[0]
        self.name = self.first.strip().upper()

    def value(self, field: int, component: int = 1, repetition: int = 1, sub: int = 1) -> str:
        """The unescaped value at a position, or "" when the position is absent or python-hl7
        fails on the value. Positions are 1-based; 0 reads as 1 (field 0 is then field 1), as in
        python-hl7."""
        if field < 1 or component < 1 or repetition < 1 or sub < 1:
            if min(field, component, repetition, sub) < 0:
                raise ValueError("HL7 positions are 1-based")
            raw = self.raw_header and field in (1, 2)
            field, component, repetition, sub = (
                field or 1,
                component or 1,
                repetition or 1,
                sub or 1,
            )
        else:
            raw = self.raw_header and field < 3
        fields = self.fields
        if field >= len(fields):
            return ""
        text = fields[field]
        message = self.message
        if field < self.leaves:
            # Not split (the name, MSH-1, MSH-2 of a header segment, or an unsplit segment).
            if repetition != 1 or component != 1 or sub != 1:
                return ""
            if raw:
                return text
        else:
            separator = message.repetition
            if separator in text:
                parts = text.split(separator)
                if repetition > len(parts):
                    return ""
                text = parts[repetition - 1]
            elif repetition != 1:
                return ""
            separator = message.component
            if separator in text:
                parts = text.split(separator)
                if component > len(parts):
                    return ""
                text = parts[component - 1]
            elif component != 1:
                return ""
            separator = message.sub
            if separator in text:
                parts = text.split(separator)
                if sub > len(parts):
                    return ""
                text = parts[sub - 1]
            elif sub != 1:
                return ""
        if message.escape not in text:
            return text
        try:
            return message.unescape(text)
        except (ValueError, OverflowError, MemoryError):
            return ""

    def get(self, field: int, component: int = 1, repetition: int = 1, sub: int = 1) -> str:
        """``value`` with surrounding white space removed: what the mapping reads."""
        return self.value(field, component, repetition, sub).strip()

    def repetitions(self, field: int) -> int:
        """How many repetitions a field has (0 when absent), at most 20."""
        fields = self.fields
        if field >= len(fields) or field < 1:
            return 0
        if field < self.leaves:
            return 1
        return min(fields[field].count(self.message.repetition) + 1, 20)
