"""Seeded synthetic multi-hospital feeds (FHIR R4 NDJSON + CSV) with ground truth.

>>> from pathlib import Path
>>> from biostream_dev.synth import generate_feed
>>> manifest = generate_feed(Path("out/feed"), persons=1000)  # doctest: +SKIP

See README.md in this package for the feed layout and format decisions.
"""

from biostream_dev.synth.canaries import CANARY_KINDS, Canary, canary_values, iter_canaries
from biostream_dev.synth.corruption import DEFAULT_CORRUPTION_RATES, CorruptionRates
from biostream_dev.synth.feed import generate_feed, hospital_profiles
from biostream_dev.synth.formats import (
    CSV_COLUMNS,
    CSV_FILE,
    FHIR_FILE,
    IDENTIFIER_TYPE_SYSTEM,
    KCD_SYSTEMS,
    LOINC_SYSTEM,
    MRN_SYSTEM_TEMPLATE,
    MRN_TYPE_CODE,
    RRN_SYSTEM,
    RRN_TYPE_CODE,
    HospitalProfile,
    mrn_system,
)
from biostream_dev.synth.manifest import (
    MANIFEST_FILE,
    TRUTH_FILE,
    FeedManifest,
    TruthRecord,
    read_truth,
)
from biostream_dev.synth.people import Address, Person, generate_population

__all__ = [
    "CANARY_KINDS",
    "CSV_COLUMNS",
    "CSV_FILE",
    "DEFAULT_CORRUPTION_RATES",
    "FHIR_FILE",
    "IDENTIFIER_TYPE_SYSTEM",
    "KCD_SYSTEMS",
    "LOINC_SYSTEM",
    "MANIFEST_FILE",
    "MRN_SYSTEM_TEMPLATE",
    "MRN_TYPE_CODE",
    "RRN_SYSTEM",
    "RRN_TYPE_CODE",
    "TRUTH_FILE",
    "Address",
    "Canary",
    "CorruptionRates",
    "FeedManifest",
    "HospitalProfile",
    "Person",
    "TruthRecord",
    "canary_values",
    "generate_feed",
    "generate_population",
    "hospital_profiles",
    "iter_canaries",
    "mrn_system",
    "read_truth",
]
