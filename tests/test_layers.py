"""The layers of docs/architecture.md hold: the import contracts of pyproject.toml are kept, no module
takes part in an import cycle, and no module imports checker code from inside a function (the usual
way to hide a cycle)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import networkx as nx
import pytest
from importlinter.cli import lint_imports

import checker.rules  # noqa: F401  (every family, imported explicitly: the reference registry)
from checker.registry import all_rules

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "checker"

# (module, function) pairs allowed to import checker code at run time, with the reason.
DYNAMIC_IMPORTS_ALLOWED = {
    # Plugin discovery inside one package: the loader modules of checker/referentials/ import the
    # store (checker.referentials) to register themselves, so the store can only find them when
    # a referential is first requested.
    ("checker.referentials", "_import_loaders"),
    # Start-up cost, not a cycle: `import checker.service` (configuration, feedback statistics)
    # does not import FastAPI; the app module, which does, loads when an app is built.
    ("checker.service", "create_app"),
    # A name → module table, each format loading when asked for (fhir pulls the fhir.resources
    # models, cds-hooks the drug matcher); no format module imports the package back.
    ("checker.formats", "render"),
}


def test_import_contracts_are_kept(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO))
    code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    out = capsys.readouterr().out
    assert code == 0, out


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("checker", cache_dir=None)


def test_no_module_is_in_an_import_cycle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(REPO))
    graph = _graph()
    g = nx.DiGraph()
    for m in graph.modules:
        g.add_node(m)
        g.add_edges_from((m, i) for i in graph.find_modules_directly_imported_by(m))
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert cycles == []
    # nor between the packages directly under checker/ (a package stands for all its modules)
    top = nx.DiGraph()
    for a, b in g.edges:
        pa, pb = ".".join(a.split(".")[:2]), ".".join(b.split(".")[:2])
        if pa != pb and "checker" not in (pa, pb):
            top.add_edge(pa, pb)
    assert [sorted(c) for c in nx.strongly_connected_components(top) if len(c) > 1] == []


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _names_checker(node: ast.AST) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] == "checker"
    if isinstance(node, ast.Import):
        return any(a.name.split(".")[0] == "checker" for a in node.names)
    if isinstance(node, ast.Call):  # importlib.import_module(...) / __import__(...)
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        return name in ("import_module", "__import__")
    return False


def late_checker_imports(source: str, module: str) -> list[str]:
    """Imports of checker code (static or by name) placed inside a function or a class body."""
    found: list[str] = []

    def visit(node: ast.AST, scope: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                inner = getattr(child, "name", "<lambda>") if scope is None else scope
            if scope is not None and _names_checker(child) and (module, scope) not in DYNAMIC_IMPORTS_ALLOWED:
                found.append(f"{module}:{child.lineno} (in {scope})")
            visit(child, inner)

    visit(ast.parse(source), None)
    return found


def test_no_checker_import_inside_a_function() -> None:
    late = [hit for path in sorted(PACKAGE.rglob("*.py"))
            for hit in late_checker_imports(path.read_text(encoding="utf-8"), _module_name(path))]
    assert late == []


def test_the_late_import_check_sees_every_form() -> None:
    src = (
        "import checker.model\n"
        "if True:\n    from checker import api\n"
        "def f():\n    from checker.rules import x\n"
        "class C:\n    import checker.registry\n"
        "    def g(self):\n        from . import y\n"
        "def h():\n    import importlib\n    importlib.import_module('checker.rules')\n"
        "def k():\n    import lxml.etree\n"
    )
    assert late_checker_imports(src, "m") == ["m:5 (in f)", "m:7 (in C)", "m:9 (in C)", "m:12 (in h)"]


def test_importing_any_module_registers_every_rule_and_loader() -> None:
    """The API is the composition root: whatever module a caller imports first, the rules and the
    loader of every referential in the manifest are registered (a fresh interpreter each time)."""
    defined = len(all_rules())
    for first in ("checker.registry", "checker.referentials", "checker.model"):
        code = (f"import {first}\n"
                "from checker import referentials as r\n"
                "from checker.registry import all_rules\n"
                "r._import_loaders()\n"
                "print(len(all_rules()), sorted(set(r.load_manifest()) - set(r._LOADERS)))")
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
        count, missing = out.stdout.split(" ", 1)
        assert int(count) == defined and missing.strip() == "[]", (first, out.stdout)

