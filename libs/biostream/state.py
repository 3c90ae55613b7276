"""The key-value state a handler reads and writes, journaled for the engine's changelog."""

from __future__ import annotations

from collections.abc import Iterator

_ABSENT = object()


class StateStore:
    """In-memory key-value state whose changes are journaled for the changelog.

    A message's changes can be rolled back (``rollback_message``) when its handler fails halfway,
    so a dead-lettered message leaves no partial state behind.
    """

    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}
        self._changes: dict[str, bytes | None] = {}
        self._undo: dict[str, object] = {}

    def get(self, key: str) -> bytes | None:
        return self._data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self._remember(key)
        self._data[key] = value
        self._changes[key] = value

    def delete(self, key: str) -> None:
        if key in self._data:
            self._remember(key)
            del self._data[key]
            self._changes[key] = None

    def __len__(self) -> int:
        return len(self._data)

    def keys_with_prefix(self, prefix: str) -> Iterator[str]:
        return (key for key in self._data if key.startswith(prefix))

    def _remember(self, key: str) -> None:
        if key not in self._undo:
            self._undo[key] = self._data.get(key, _ABSENT)

    def begin_message(self) -> None:
        self._undo.clear()

    def rollback_message(self) -> None:
        for key, old in self._undo.items():
            if old is _ABSENT:
                self._data.pop(key, None)
            else:
                assert isinstance(old, bytes)
                self._data[key] = old
            # The changelog must end with the value the store holds now.
            self._changes[key] = self._data.get(key)
        self._undo.clear()

    def drain_changes(self) -> dict[str, bytes | None]:
        changes, self._changes = self._changes, {}
        return changes

    def restore(self, key: str, value: bytes | None) -> None:
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value
