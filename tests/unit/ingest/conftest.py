"""What the ingest tests share: the byte-level mutation strategy of the property tests."""

from __future__ import annotations

from hypothesis import strategies as st


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], alphabet: bytes) -> bytes:
    """A seed message with up to 8 byte-level edits: replace, insert, delete or duplicate; the
    replaced and inserted bytes come from ``alphabet`` (the format's separators and neighbours)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        operation = draw(st.sampled_from(["replace", "insert", "delete", "duplicate"]))
        byte = draw(st.sampled_from(list(alphabet)))
        if operation == "replace":
            data[position] = byte
        elif operation == "insert":
            data.insert(position, byte)
        elif operation == "delete":
            del data[position]
        else:
            end = draw(st.integers(position, min(len(data), position + 40)))
            data[position:position] = data[position:end]
    return bytes(data)
