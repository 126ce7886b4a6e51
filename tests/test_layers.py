"""The import direction of the code base: each package imports only from the layers below it.

    core  <-  trackers, reid  <-  pipeline.tracklet, pipeline.formats  <-  pipeline.association, pipeline.runfolder
          <-  pipeline.run  <-  pipeline.config  <-  pipeline.outputs, pipeline.evaluation, pipeline.search
          <-  pipeline.commands, pipeline.cli

Imports inside functions count too; those under ``if TYPE_CHECKING:`` (annotations only, never run) do not.
Packages of one layer do not import each other.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "trackers", "reid", "pipeline")
LAYERS = [("core",), ("trackers", "reid"), ("pipeline.tracklet", "pipeline.formats"),
          ("pipeline.association", "pipeline.runfolder"), ("pipeline.run",), ("pipeline.config",),
          ("pipeline.outputs", "pipeline.evaluation", "pipeline.search"), ("pipeline.commands", "pipeline.cli")]


def unit(module: str) -> str:
    """The layer unit a module belongs to: its top package, or ``pipeline.<sub>``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "pipeline" and len(parts) > 1 else parts[0]


def level(u: str) -> int:
    for i, layer in enumerate(LAYERS):
        if u in layer:
            return i
    raise KeyError(f"{u} is in no layer: add it to LAYERS in {__file__}")


def project_imports() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every import of a project module."""
    out = []
    for pkg in PACKAGES:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            mod = ".".join(f.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            tree = ast.parse(f.read_text(), str(f))
            typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block)
                           for stmt in block.body for n in ast.walk(stmt)}
            for node in ast.walk(tree):
                if id(node) in typing_only:
                    continue
                if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                out += [(mod, n, node.lineno) for n in names if n.split(".")[0] in PACKAGES]
    return out


def _is_type_checking(node) -> bool:
    """``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``)."""
    test = getattr(node, "test", None) if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def test_every_module_is_in_a_layer():
    units = {unit(m) for m, _, _ in project_imports()} | {unit(n) for _, n, _ in project_imports()}
    units.discard("pipeline")
    for u in sorted(units):
        level(u)


def test_imports_only_point_down():
    wrong = [f"{m}:{line} imports {n}" for m, n, line in project_imports()
             if unit(m) != unit(n) and unit(n) != "pipeline" and level(unit(n)) >= level(unit(m))]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_reid_and_trackers_never_import_pipeline():
    wrong = [f"{m}:{line} imports {n}" for m, n, line in project_imports()
             if unit(m) in ("reid", "trackers", "core") and n.split(".")[0] == "pipeline"]
    assert wrong == []


@pytest.mark.parametrize("source,expect", [("reid.model", 1), ("pipeline.run.runner", 4),
                                           ("pipeline.commands.run", 7), ("core.errors", 0)])
def test_layer_table_places_known_modules(source, expect):
    assert level(unit(source)) == expect


def test_the_run_stage_loads_nothing_of_the_association():
    """pipeline.run takes its settings as a RunConfig (pipeline.config) but never loads pipeline.association."""
    import subprocess
    import sys

    code = ("import importlib, pkgutil, sys, pipeline.run as r\n"
            "[importlib.import_module(m.name) for m in pkgutil.walk_packages(r.__path__, 'pipeline.run.')]\n"
            "print(sorted(m for m in sys.modules if m.startswith(('pipeline.association', 'pipeline.config'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
