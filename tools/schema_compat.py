#!/usr/bin/env python3
"""Check that every Avro contract stays BACKWARD compatible with its version at a base git ref.

Backward compatible means: the new (working-tree) schema, used as reader, can read every message
written with the old (base) schema as writer. Consumers upgrade first; old messages on the topics
and in ``schemas/avro/archive`` must stay readable.

    python tools/schema_compat.py [--base REF] [--repo PATH]

Default base: the merge-base with ``main`` (or ``origin/main``) when the current branch is not
``main``, else ``HEAD~1``. Prints one line per schema (``ok``, ``INCOMPATIBLE: <details>``,
``new``, ``DELETED``) and exits 1 if any schema is incompatible or was deleted. A base ref that does
not exist, or has no ``schemas/avro``, is reported and exits 0: there is nothing to compare.

Uses the Apache ``avro`` package's ReaderWriterCompatibilityChecker (a dev dependency).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path, PurePosixPath

import avro.schema
from avro.compatibility import (
    ReaderWriterCompatibilityChecker,
    SchemaCompatibilityResult,
    SchemaCompatibilityType,
    lookup_writer_field,
    schema_name_equals,
)

SCHEMA_DIR = "schemas/avro"


def check_pair(old_json: str, new_json: str) -> list[str]:
    """Problems that stop ``new_json`` (reader) from reading data written with ``old_json``.

    An empty list means backward compatible.
    """
    try:
        old = avro.schema.parse(old_json)
    except Exception as exc:  # avro raises SchemaParseException, JSONDecodeError, ...
        return [f"old schema does not parse ({type(exc).__name__}: {exc})"]
    try:
        new = avro.schema.parse(new_json)
    except Exception as exc:
        return [f"new schema does not parse ({type(exc).__name__}: {exc})"]
    result = _checker().get_compatibility(reader=new, writer=old)
    if result.compatibility is SchemaCompatibilityType.compatible:
        return []
    problems: list[str] = []
    if isinstance(new, avro.schema.RecordSchema) and isinstance(old, avro.schema.RecordSchema):
        problems = _record_problems(new, old)
    # The checker merges everything it found into one result; when the per-field breakdown above
    # does not explain the verdict, report the checker's own findings rather than nothing.
    return problems or [_describe(result)]


def _checker() -> ReaderWriterCompatibilityChecker:
    # A fresh checker per comparison: it memoises pairs by object identity.
    return ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]


def _record_problems(new: avro.schema.RecordSchema, old: avro.schema.RecordSchema) -> list[str]:
    problems: list[str] = []
    if not schema_name_equals(new, old):
        problems.append(f"record name changed from {old.fullname} to {new.fullname}")
    for field in new.fields:
        writer_field = lookup_writer_field(writer_schema=old, reader_field=field)
        if writer_field is None:
            if not field.has_default:
                problems.append(
                    f"field '{field.name}' is new and has no default, "
                    "so records written with the old schema cannot fill it"
                )
            continue
        sub = _checker().get_compatibility(reader=field.type, writer=writer_field.type)
        if sub.compatibility is not SchemaCompatibilityType.compatible:
            problems.append(f"field '{field.name}': {_describe(sub)}")
    return problems


def _describe(result: SchemaCompatibilityResult) -> str:
    kinds = sorted({kind.value for kind in result.incompatibilities})
    text = f"{', '.join(kinds) or 'incompatible'}: {'; '.join(sorted(result.messages))}"
    locations = sorted(loc for loc in result.locations if loc != "/")
    if locations:
        text += f" (at {', '.join(locations)})"
    return text


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["git", "-C", str(repo), *args],  # noqa: S607 - git from PATH, like any developer tool
        capture_output=True,
        text=True,
        check=False,
    )


def _ref_exists(repo: Path, ref: str) -> bool:
    # Any tree-ish will do (a commit, a tag, a tree id): only files are read from it.
    return _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{tree}}").returncode == 0


def default_base(repo: Path) -> str | None:
    """Merge-base with main when on another branch, else ``HEAD~1``; None if there is none."""
    branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    if branch == "main":
        return "HEAD~1"
    for mainline in ("main", "origin/main"):
        if _ref_exists(repo, mainline):
            merge_base = _git(repo, "merge-base", "HEAD", mainline)
            if merge_base.returncode == 0 and merge_base.stdout.strip():
                return merge_base.stdout.strip()
    return None


def _schemas_at(repo: Path, ref: str) -> list[str]:
    """Paths of the top-level ``schemas/avro/*.avsc`` at ``ref`` (archive/ excluded)."""
    listing = _git(repo, "ls-tree", "--name-only", f"{ref}:{SCHEMA_DIR}")
    if listing.returncode != 0:
        return []
    names = [line for line in listing.stdout.splitlines() if line.endswith(".avsc")]
    return sorted(f"{SCHEMA_DIR}/{name}" for name in names)


def run(repo: Path, base: str | None) -> int:
    if base is None:
        base = default_base(repo)
        if base is None:
            print("schema_compat: no merge-base with main found; nothing to compare")
            return 0
    if not _ref_exists(repo, base):
        print(f"schema_compat: base ref {base!r} does not exist; nothing to compare")
        return 0
    old_paths = _schemas_at(repo, base)
    if not old_paths:
        print(f"schema_compat: base {base!r} has no {SCHEMA_DIR}/*.avsc; nothing to compare")
        return 0
    print(f"schema_compat: BACKWARD compatibility of {SCHEMA_DIR} against {base}")
    failed = False
    for path in old_paths:
        name = PurePosixPath(path).name
        current = repo / path
        if not current.is_file():
            print(f"{name}: DELETED (present at {base}; old messages would become unreadable)")
            failed = True
            continue
        old_json = _git(repo, "show", f"{base}:{path}")
        if old_json.returncode != 0:
            print(f"{name}: INCOMPATIBLE: cannot read the base version ({old_json.stderr.strip()})")
            failed = True
            continue
        problems = check_pair(old_json.stdout, current.read_text(encoding="utf-8"))
        if problems:
            print(f"{name}: INCOMPATIBLE: {'; '.join(problems)}")
            failed = True
        else:
            print(f"{name}: ok")
    old_names = {PurePosixPath(p).name for p in old_paths}
    for current in sorted((repo / SCHEMA_DIR).glob("*.avsc")):
        if current.name not in old_names:
            print(f"{current.name}: new")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--base",
        help="git ref to compare against (default: merge-base with main, or HEAD~1 on main)",
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=None,
        help="repository root (default: the repository holding this script)",
    )
    args = parser.parse_args(argv)
    repo = args.repo
    if repo is None:
        top = _git(Path(__file__).resolve().parent, "rev-parse", "--show-toplevel")
        if top.returncode != 0:
            print("schema_compat: not inside a git repository; nothing to compare")
            return 0
        repo = Path(top.stdout.strip())
    return run(repo.resolve(), args.base)


if __name__ == "__main__":
    sys.exit(main())
