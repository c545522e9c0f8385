"""The floors of ``src/kiln`` hold: no package imports one above it or beside it, no module cycles.

Imports are read from the source (module level and inside functions), together with the kiln module
names that code could load dynamically: ``import_module("kiln.…")`` literals and ``"kiln.x.y[:fn]"``
strings. The floors are the README's "Architecture" section.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# Packages (and top-level modules) by floor, bottom first; a package may import lower floors only.
FLOORS: list[set[str]] = [
    {"kiln", "kiln.errors", "kiln.home", "kiln.paths", "kiln.files"},
    {"kiln.ec2_errors"},
    {"kiln.model", "kiln.db", "kiln.documents"},
    {"kiln.store", "kiln.schedule", "kiln.runtime"},
    {"kiln.aws"},
    {"kiln.services"},
    {"kiln.api"},  # the HTTP front end; ``kiln serve`` (the CLI) runs it
    {"kiln.cli"},
    {"kiln.__main__"},
]
# Inside services: common below the families, the wiring and whole-system modules on top. Families may
# use each other (a recipe uses components) as long as no cycle forms.
SERVICE_FLOORS: list[set[str]] = [
    {"kiln.services.common"},
    {
        "kiln.services.components",
        "kiln.services.recipes",
        "kiln.services.container_recipes",
        "kiln.services.configurations",
        "kiln.services.builds",
        "kiln.services.pipelines",
        "kiln.services.lifecycle",
        "kiln.services.ec2",
        "kiln.services.accounts",
        "kiln.services.publishing",
        "kiln.services.aws_accounts",
        "kiln.services.parameters",
        "kiln.services.fleet",
        "kiln.services.compliance",
        "kiln.services.workflows",
        "kiln.services.inventory",
        "kiln.services.scanning",
    },
    {"kiln.services.apply", "kiln.services.registry", "kiln.services.startup", "kiln.services.demo",
     "kiln.services.scheduling", "kiln.services.ec2_queries", "kiln.services.image_versions",
     "kiln.services.organization_accounts", "kiln.services.demo_fleet", "kiln.services.build_queue",
     "kiln.services.demo_advisory",
     "kiln.services.apply_remote"},
]
# "kiln.pkg.module", "kiln.pkg:function" ... ("kiln.db" alone is more likely the database's file name).
MODULE_STRING = re.compile(r"kiln(?:\.\w+){2,}(?::\w+)?|kiln(?:\.\w+)+:\w+")


def modules(src: Path) -> dict[str, Path]:
    found = {}
    for path in src.glob("kiln/**/*.py"):
        name = ".".join(path.relative_to(src).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The kiln modules ``path`` imports or names for dynamic loading."""
    targets: set[str] = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
            "import_module",
            "__import__",
        ):
            names = [arg.value for arg in node.args[:1] if isinstance(arg, ast.Constant) and isinstance(arg.value, str)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.fullmatch(node.value):
            names = [node.value.partition(":")[0]]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name.startswith("kiln"):
                targets.add(name)
    return targets


def graph(src: Path) -> dict[str, set[str]]:
    known = modules(src)
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        for target in imports(path, known):
            # A module importing its own package's __init__ (``from kiln.x import y``) is not an edge.
            if target != name and not (name.startswith(target + ".") and known[target].name == "__init__.py"):
                edges[name].add(target)
    return edges


def floor_of(module: str, floors: list[set[str]]) -> tuple[int, str] | None:
    best: tuple[int, str] | None = None
    for level, members in enumerate(floors):
        for member in members:
            if (module == member or module.startswith(member + ".")) and (best is None or len(member) > len(best[1])):
                best = (level, member)
    return best


def layering_violations(
    edges: dict[str, set[str]], floors: list[set[str]], scope: str = "", *, beside: bool = False
) -> list[str]:
    """Imports of a higher floor (and, unless ``beside``, of another package on the same floor)."""
    problems = []
    for source, targets in sorted(edges.items()):
        if not source.startswith(scope):
            continue
        here = floor_of(source, floors)
        for target in sorted(targets):
            there = floor_of(target, floors)
            if here is None or there is None or not target.startswith(scope) or here[1] == there[1]:
                continue
            if there[0] > here[0] or (there[0] == here[0] and not beside):
                relation = "above" if there[0] > here[0] else "beside"
                problems.append(f"{source} imports {target}, which is {relation} it")
    return problems


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    """The import graph of ``src/kiln``, read once for this module's checks (they only read it)."""
    return graph(SRC)


def test_every_package_has_a_floor() -> None:
    unplaced = sorted(name for name in modules(SRC) if floor_of(name, FLOORS) is None)
    assert unplaced == []


def test_no_package_imports_one_above_or_beside_it(edges: dict[str, set[str]]) -> None:
    assert layering_violations(edges, FLOORS) == []


def test_services_common_is_below_the_families_and_wiring_on_top(edges: dict[str, set[str]]) -> None:
    assert layering_violations(edges, SERVICE_FLOORS, scope="kiln.services.", beside=True) == []


def test_no_import_cycles(edges: dict[str, set[str]]) -> None:
    assert cycles(edges) == []


def test_front_ends_reach_the_system_only_through_services(edges: dict[str, set[str]]) -> None:
    """The CLI and the API parse, call services and render (``from kiln import store`` counts too)."""
    below = ("kiln.store", "kiln.runtime", "kiln.db", "kiln.schedule")
    reaching = sorted(
        f"{source} imports {target}"
        for source, targets in edges.items()
        if source.startswith(("kiln.cli", "kiln.api"))
        for target in targets
        if target.startswith(below)
    )
    assert reaching == []


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A tree with one upward import via an ``import_module`` string and one cycle."""
    package = tmp_path / "kiln"
    for sub in ("db", "services", "model"):
        (package / sub).mkdir(parents=True)
        (package / sub / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "db" / "engine.py").write_text('HOOKS = ("kiln.services.recovery:recover",)\n')
    (package / "services" / "recovery.py").write_text("def recover():\n    from kiln.db import engine\n")
    (package / "model" / "a.py").write_text("from kiln.model import b\n")
    (package / "model" / "b.py").write_text("def f():\n    from kiln.model.a import x\n")
    return tmp_path


def test_the_check_sees_strings_and_function_level_imports(planted: Path) -> None:
    edges = graph(planted)
    assert layering_violations(edges, FLOORS) == [
        "kiln.db.engine imports kiln.services.recovery, which is above it"
    ]
    assert sorted(cycles(edges)) == [["kiln.db.engine", "kiln.services.recovery"], ["kiln.model.a", "kiln.model.b"]]
