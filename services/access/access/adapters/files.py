"""The files the access service reads at start: the board (``BIOSTREAM_BOARD_FILE``) and the
DUO term list shipped in the package (``access/data/duo.csv``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from access.domain.board import BoardConfig, BoardError, parse_board
from access.domain.catalogue import EMPTY, Catalogue, parse_catalogue
from access.domain.duo import DuoTerms, parse_duo_csv


def load_board(path: Path) -> BoardConfig:
    """The board file, or ``BoardError`` naming the file and the problem."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BoardError(f"{path}: cannot read the board file ({type(error).__name__})") from None
    return parse_board(text, str(path))


def shipped_duo_terms() -> DuoTerms:
    """The DUO term list this package ships (its source and licence: ``data/README.md``)."""
    text = resources.files("access").joinpath("data/duo.csv").read_text(encoding="utf-8")
    return parse_duo_csv(text)


def load_catalogue(path: Path | None, terms: DuoTerms) -> Catalogue:
    """The catalogue file (D47), or none configured; ``BoardError`` naming the problem."""
    if path is None:
        return EMPTY
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise BoardError(f"{path}: cannot read the catalogue ({type(error).__name__})") from None
    return parse_catalogue(text, str(path), terms)
