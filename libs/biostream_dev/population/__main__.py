"""python -m biostream_dev.population --persons N --seed S --out DIR [--rates rates.json]
[--hospitals H]"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .generate import generate
from .rates import Rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m biostream_dev.population")
    parser.add_argument("--persons", type=int, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rates", type=Path, help="JSON object overriding some rates")
    parser.add_argument("--hospitals", type=int)
    args = parser.parse_args(argv)
    rates = Rates.load(args.rates) if args.rates else Rates()
    written = generate(args.out, args.persons, args.seed, rates, args.hospitals)
    print(
        json.dumps(
            {"out": str(written.out), "persons": written.persons, "records": written.records}
        )
    )


if __name__ == "__main__":
    main()
