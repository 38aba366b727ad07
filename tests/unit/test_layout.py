"""The package layout of ``shared_code``: one package per area on top of ``platform``.

Rules (issue "One package per area"):
- ``shared_code/`` holds packages only (no domain module at its root);
- every package ``__init__.py`` has a docstring and imports nothing (cold start: importing one
  module must not load an area's SDKs);
- ``platform`` imports only ``platform``;
- an area imports ``platform``, itself, and of another area only the modules that area lists in
  ``PUBLIC_MODULES``; the dependencies between areas form no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared_code"
PLATFORM = "platform"


def areas() -> list[str]:
    return sorted(p.name for p in SHARED.iterdir() if (p / "__init__.py").is_file())


def public_modules(area: str) -> frozenset[str]:
    """``PUBLIC_MODULES`` of an area's ``__init__.py``, read without importing it."""
    tree = ast.parse((SHARED / area / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "PUBLIC_MODULES" for t in node.targets):
            return frozenset(ast.literal_eval(node.value))
    return frozenset()


def imported_modules(source: str, module: str) -> set[str]:
    """Every ``shared_code`` module a source imports (module-level or inside functions), as dotted
    paths below ``shared_code``; ``from shared_code.x import y`` counts as ``x.y`` because ``y``
    may be a module. ``module`` (the source's dotted name) resolves relative imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("shared_code."))
        elif isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                parts = module.split(".")
                target = ".".join(parts[: len(parts) - node.level] + ([target] if target else []))
            if target == "shared_code" or target.startswith("shared_code."):
                found.update(f"{target}.{alias.name}" for alias in node.names)
    return {name.removeprefix("shared_code.") for name in found if name != "shared_code"}


def violations(area: str, module_path: str, source: str, public: dict[str, frozenset[str]]) -> list[str]:
    """What is wrong with the imports of ``shared_code.<module_path>`` (in ``area``)."""
    problems = []
    for target in sorted(imported_modules(source, f"shared_code.{module_path}")):
        target_area, _, rest = target.partition(".")
        if target_area in (area, PLATFORM):
            continue
        if area == PLATFORM:
            problems.append(f"platform module {module_path} imports area module {target}")
        elif not rest or rest.split(".")[0] not in public.get(target_area, frozenset()):
            problems.append(f"{module_path} imports {target}, not a public module of {target_area}")
    return problems


def area_modules() -> list[tuple[str, str, Path]]:
    found = []
    for path in sorted(SHARED.rglob("*.py")):
        relative = path.relative_to(SHARED).with_suffix("")
        if len(relative.parts) > 1:
            found.append((relative.parts[0], ".".join(relative.parts), path))
    return found


def test_the_root_of_shared_code_holds_only_packages():
    modules = sorted(p.name for p in SHARED.glob("*.py") if p.name != "__init__.py")
    assert modules == [], f"domain modules at the root of shared_code: {modules}"
    assert set(areas()) == {PLATFORM, "devices", "accounts", "filestore", "gatherer", "tokens", "audit"}


@pytest.mark.parametrize("init", sorted(SHARED.rglob("__init__.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_package_inits_document_the_area_and_import_nothing(init):
    tree = ast.parse(init.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{init.relative_to(ROOT)} needs a docstring saying what the package holds"
    imports = [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports == [], f"{init.relative_to(ROOT)} must not import (cold start)"


def test_imports_go_only_to_platform_the_own_area_or_declared_public_modules():
    public = {area: public_modules(area) for area in areas()}
    for area, declared in public.items():
        missing = [m for m in declared if not (SHARED / area / f"{m}.py").is_file()]
        assert missing == [], f"{area}.PUBLIC_MODULES names missing modules {missing}"
    problems = [
        problem
        for area, module_path, path in area_modules()
        for problem in violations(area, module_path, path.read_text(encoding="utf-8"), public)
    ]
    assert problems == []


def test_the_areas_depend_on_each_other_without_cycles():
    graph: dict[str, set[str]] = {area: set() for area in areas()}
    for area, module_path, path in area_modules():
        for target in imported_modules(path.read_text(encoding="utf-8"), f"shared_code.{module_path}"):
            target_area = target.partition(".")[0]
            if target_area not in (area, PLATFORM):
                graph[area].add(target_area)

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    cycles = sorted(area for area in graph if reaches(area, area, set()))
    assert cycles == [], f"areas in a dependency cycle: {cycles} ({graph})"


def test_the_rules_catch_a_private_import_and_platform_importing_an_area():
    public = {"accounts": frozenset({"users"}), "filestore": frozenset()}
    assert violations("filestore", "filestore.kms", "from shared_code.accounts import users\n", public) == []
    assert violations("filestore", "filestore.kms", "from shared_code.accounts import otp\n", public) == [
        "filestore.kms imports accounts.otp, not a public module of accounts"
    ]
    assert violations("filestore", "filestore.kms", "def f():\n    from shared_code.accounts.otp import x\n", public) == [
        "filestore.kms imports accounts.otp.x, not a public module of accounts"
    ]
    assert violations("platform", "platform.http", "from shared_code.accounts import sessions\n", public) == [
        "platform module platform.http imports area module accounts.sessions"
    ]
    assert violations("devices", "devices.integrity.verdicts", "from .. import registry\n", public) == []
    assert imported_modules("from .. import registry\n", "shared_code.devices.integrity.verdicts") == {"devices.registry"}
    assert imported_modules("from . import policy\n", "shared_code.devices.integrity.verdicts") == {"devices.integrity.policy"}
