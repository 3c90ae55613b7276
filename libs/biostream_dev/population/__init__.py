"""A second, independent generator of Korean hospital identity records for measuring linkage
(decision D40): households, twins, newborn aliases, romanised-only records, old registrations,
phone formats and clerks' slips at documented rates (``Rates``). Independent of
``biostream_dev.synth`` on purpose: the linkage was tuned on that one.

    python -m biostream_dev.population --persons 2000 --seed 1 --out out/pop [--rates r.json]
"""

from .generate import Written, generate, hospital_codes
from .rates import UNSEEN_RATES_PATH, Rates

# Seeds used while tuning linkage rules; seeds >= 1000 and unseen-rates.json are for evaluation.
TUNING_SEEDS = (1, 2, 3)
FIRST_UNSEEN_SEED = 1000

__all__ = ["FIRST_UNSEEN_SEED", "TUNING_SEEDS", "UNSEEN_RATES_PATH", "Rates", "Written",
           "generate", "hospital_codes"]  # fmt: skip
