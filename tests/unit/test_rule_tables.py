"""Every service README's table "rule → file:function" points to real code: each file exists,
each function (or class, or ``Class.method``) is defined in it, and its docstring names the row's
decision ids (docs/decisions.md), so that a rule is found from its id and its id from the code.

Each function of a row names at least one of the row's ids in its docstring, and each of the
row's ids is named by one of them. A rule table is a Markdown table whose header is
``| rule | decision | file:function |``; every ``services/*/README.md`` that has one is checked,
whichever service it is (the pseudonymizer's too, once it has one). In the last column,
backticked ``path.py:name`` names a function in ``path.py`` (relative to the service's package,
or to the repository for ``libs/...``), and a bare backticked ``name`` after it another function
of the same file.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DECISIONS = ROOT / "docs" / "decisions.md"
HEADER = ("rule", "decision", "file:function")

# D15, D23a, D-linkage-7, D-pseudonymizer-3; "-5" after a D-linkage id is D-linkage-5.
_ID = re.compile(
    r"(?<![A-Za-z0-9])D-([a-z]+)-(\d+[a-z]?)"  # D-linkage-7
    r"|(?<![A-Za-z0-9])D(\d+[a-z]?)\b"  # D15, D23a
    r"|(?<![\w-])-(\d+[a-z]?)\b"  # -5, continuing the family named before
)
_QUALNAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


def decision_ids(text: str) -> list[str]:
    """The decision ids a text names, in order, with continuations ("D-linkage-1, -5") expanded."""
    found: list[str] = []
    family: str | None = None
    for match in _ID.finditer(text):
        named_family, number, plain, continued = match.groups()
        if named_family is not None:
            family = named_family
            found.append(f"D-{named_family}-{number}")
        elif plain is not None:
            family = None
            found.append(f"D{plain}")
        elif family is not None:
            found.append(f"D-{family}-{continued}")
    return found


@dataclass(frozen=True)
class Row:
    readme: Path
    line: int
    rule: str
    ids: tuple[str, ...]
    targets: tuple[tuple[str, str], ...]  # (path as written, qualified name)
    problems: tuple[str, ...]  # spans of the last column that name no file:function

    def __str__(self) -> str:
        return f"{self.readme.relative_to(ROOT)}:{self.line} ({self.rule})"


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _targets(cell: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``path.py:name`` spans, and bare ``name`` spans in the file named before them; and the
    spans that are neither."""
    targets: list[tuple[str, str]] = []
    problems: list[str] = []
    current: str | None = None
    for span in re.findall(r"`([^`]+)`", cell):
        path, colon, name = span.partition(":")
        if colon and path.endswith(".py"):
            current = path
        elif current is not None:
            name = span
        else:
            problems.append(f"`{span}` names no file (write `path.py:function`)")
            continue
        if not _QUALNAME.fullmatch(name):
            problems.append(f"`{span}` is not a function, class or Class.method name")
            continue
        targets.append((current, name))
    return targets, problems


def rule_rows(readme: Path) -> list[Row]:
    """The rows of every rule table in one README."""
    rows: list[Row] = []
    lines = readme.read_text(encoding="utf-8").splitlines()
    in_table = False
    for number, line in enumerate(lines, start=1):
        if not line.lstrip().startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if tuple(c.lower() for c in cells) == HEADER:
            in_table = True
            continue
        if not in_table or set("".join(cells)) <= set("-: "):
            continue
        rule, decision, where = cells
        targets, problems = _targets(where)
        ids = tuple(decision_ids(decision))
        rows.append(Row(readme, number, rule, ids, tuple(targets), tuple(problems)))
    return rows


def service_readmes() -> list[Path]:
    return sorted((ROOT / "services").glob("*/README.md"))


def all_rows() -> list[Row]:
    return [row for readme in service_readmes() for row in rule_rows(readme)]


def _resolve(readme: Path, path: str, root: Path = ROOT) -> Path:
    if path.startswith("libs/"):
        return root / path
    service = readme.parent
    return service / service.name / path


def _definition(tree: ast.Module, qualname: str) -> ast.AST | None:
    scope: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in scope
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if node is None:
            return None
        scope = node.body  # type: ignore[attr-defined]
    return node


def known_ids() -> set[str]:
    return set(decision_ids("\n".join(re.findall(r"^## (D[^.]+)\.", DECISIONS.read_text(), re.M))))


def test_the_rule_tables_are_found() -> None:
    """At least the linkage README has one (the test checks every README that has one)."""
    assert any(row.readme.parent.name == "linkage" for row in all_rows())


def problems_of(row: Row, root: Path = ROOT) -> list[str]:
    """What is wrong with one row (nothing: it points to real functions naming its ids)."""
    if not row.ids:
        return ["no decision id"]
    unknown = set(row.ids) - known_ids()
    if unknown:
        return [f"{sorted(unknown)} not in docs/decisions.md"]
    if row.problems or not row.targets:
        return list(row.problems) or ["no `file.py:function`"]
    problems: list[str] = []
    named: set[str] = set()
    for path, qualname in row.targets:
        source = _resolve(row.readme, path, root)
        if not source.is_file():
            problems.append(f"{path} does not exist")
            continue
        node = _definition(ast.parse(source.read_text(encoding="utf-8")), qualname)
        if node is None:
            problems.append(f"{path} defines no {qualname}")
            continue
        ids = set(decision_ids(ast.get_docstring(node) or ""))  # type: ignore[arg-type]
        if not ids & set(row.ids):
            problems.append(f"the docstring of {path}:{qualname} names none of {list(row.ids)}")
        named |= ids
    missing = set(row.ids) - named
    if missing and not problems:
        problems.append(f"no docstring of the row's functions names {sorted(missing)}")
    return problems


@pytest.mark.parametrize("row", all_rows(), ids=str)
def test_each_rule_row_points_to_a_function_whose_docstring_names_its_decision(row: Row) -> None:
    problems = problems_of(row)
    assert not problems, f"{row}: {'; '.join(problems)}"


def test_a_wrong_row_is_reported(tmp_path: Path) -> None:
    """The check itself: a missing file or function, a docstring without the id, a cell that
    names no file:function, an id that docs/decisions.md does not have."""
    package = tmp_path / "services" / "demo" / "demo"
    package.mkdir(parents=True)
    (package / "rules.py").write_text(
        'def named():\n    """D-linkage-6: bounded."""\n\n\n'
        'def silent():\n    """No id."""\n\n\n'
        'class Holder:\n    def method(self):\n        """D-linkage-1 and -6."""\n'
    )
    readme = package.parent / "README.md"
    readme.write_text(
        "| rule | decision | file:function |\n|---|---|---|\n"
        "| fine | D-linkage-6 | `rules.py:named`, `Holder.method` |\n"
        "| no file | D-linkage-6 | `missing.py:named` |\n"
        "| no function | D-linkage-6 | `rules.py:absent` |\n"
        "| no id in the docstring | D-linkage-6 | `rules.py:silent` |\n"
        "| not a function | D-linkage-6 | `rules.py` (`x=1`) |\n"
        "| unknown id | D-nothing-1 | `rules.py:named` |\n"
        "| one id unnamed | D-linkage-6, D15 | `rules.py:named` |\n"
    )
    found = {row.rule: problems_of(row, tmp_path) for row in rule_rows(readme)}
    assert found["fine"] == []
    assert found["no file"] == ["missing.py does not exist"]
    assert found["no function"] == ["rules.py defines no absent"]
    assert found["no id in the docstring"] == [
        "the docstring of rules.py:silent names none of ['D-linkage-6']"
    ]
    assert found["not a function"] == [
        "`rules.py` names no file (write `path.py:function`)",
        "`x=1` names no file (write `path.py:function`)",
    ]
    assert found["unknown id"] == ["['D-nothing-1'] not in docs/decisions.md"]
    assert found["one id unnamed"] == ["no docstring of the row's functions names ['D15']"]


def test_decision_ids_expand_continuations() -> None:
    assert decision_ids("D-linkage-1, -5 (2)(3)") == ["D-linkage-1", "D-linkage-5"]
    assert decision_ids("D23a, D-audit-3; D15") == ["D23a", "D-audit-3", "D15"]
    assert decision_ids("a - 5 and x-5, KCD9, MD5, DG1, PID-3") == []
