"""The catalogue: each dataset's own GA4GH DUO terms, as the programme configures them (one YAML
file, D47), the restrictions an application's data use codes are matched against."""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import yaml

from access.domain.board import BoardError
from access.domain.duo import DuoTerms, duo_problem
from access.domain.forms import DATASET

Catalogue = Mapping[str, tuple[str, ...]]
EMPTY: Catalogue = MappingProxyType({})


def parse_catalogue(text: str, source: str, terms: DuoTerms) -> Catalogue:
    """D47: ``datasets: {<dataset>: {duo: [codes]}}``, every dataset name valid and every code in
    the DUO term list with at least one permission; errors name the file and the dataset."""
    try:
        raw: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BoardError(f"{source}: not YAML ({type(error).__name__})") from None
    datasets = raw.get("datasets") if isinstance(raw, dict) else None
    if not isinstance(datasets, dict):
        raise BoardError(f"{source}: expected a mapping `datasets: {{name: {{duo: [codes]}}}}`")
    found: dict[str, tuple[str, ...]] = {}
    for name, entry in datasets.items():
        if not isinstance(name, str) or not re.match(DATASET, name):
            raise BoardError(f"{source}: {name!r} is not a dataset name")
        codes = entry.get("duo") if isinstance(entry, dict) else None
        if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
            raise BoardError(f"{source}: {name}: expected `duo: [codes]`")
        problem = duo_problem(codes, terms)
        if problem is not None:
            raise BoardError(f"{source}: {name}: {problem}")
        found[name] = tuple(codes)
    return MappingProxyType(found)
