"""Import cost of ``function_app`` beyond ``azure.functions`` (cold interpreter, warm ``.pyc``).

In fresh subprocesses (one unrecorded warm-up of each, then :data:`RUNS` of each, alternating):

- A: ``import azure.functions`` alone, timed with :func:`time.perf_counter` inside the process;
- B: ``import azure.functions`` then ``import function_app``, both timed the same way.

Reported as medians: A, B's ``import function_app`` alone (the cost beyond azure.functions) and
B total − A, plus each process's wall-clock time. Then one ``python -X importtime`` run of B,
parsed for what ``import function_app`` loads after azure.functions (a marker on stderr
separates the two), showing the top :data:`TOP` modules by cumulative time, and the third-party
modules the project's own modules (``function_app``, ``functions``, ``shared_code``) import
directly, by cumulative time: which dependencies the import cost comes from.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

from benchmarks.report import heading, table
from benchmarks.stack import ROOT

RUNS = 7
TOP = 10
MARK = "@@benchmarks-mark@@"

ALONE = ("import json, time; t0 = time.perf_counter(); import azure.functions; t1 = time.perf_counter(); "
         "print(json.dumps({'azure_functions': t1 - t0}))")
WITH_APP = ("import json, time; t0 = time.perf_counter(); import azure.functions; t1 = time.perf_counter(); "
            "import function_app; t2 = time.perf_counter(); "
            "print(json.dumps({'azure_functions': t1 - t0, 'function_app': t2 - t1}))")
IMPORTTIME = f"import sys, azure.functions; sys.stderr.write('{MARK}\\n'); sys.stderr.flush(); import function_app"


@dataclass(frozen=True)
class ImportResult:
    azure_functions_ms: float
    function_app_ms: float
    difference_ms: float
    wall_alone_ms: float
    wall_with_app_ms: float
    top: list[tuple[str, float, float]]  # (module, cumulative ms, self ms)
    dependencies: list[tuple[str, float]]  # (third-party module imported by project code, cumulative ms)
    runs: int = RUNS


def _python(code: str, *flags: str) -> tuple[dict[str, float], float, str]:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *flags, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"python -c {code!r} failed:\n{result.stderr[-2000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    return figures, wall, result.stderr


PROJECT_PACKAGES = ("function_app", "functions", "shared_code")


def _parse(stderr: str) -> list[tuple[str, float, float]]:
    """``-X importtime`` lines after :data:`MARK`, in order: (name with its indent, cumulative ms, self ms)."""
    after = stderr.split(MARK, 1)[1] if MARK in stderr else ""
    rows = []
    for line in after.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        self_us, cumulative_us, name = line[len("import time:"):].split("|", 2)
        if not self_us.strip().isdigit():
            continue  # the header line
        rows.append((name.rstrip(), int(cumulative_us) / 1000, int(self_us) / 1000))
    return rows


def _direct_dependencies(rows: list[tuple[str, float, float]]) -> list[tuple[str, float]]:
    """Non-project modules whose importer is a project module, by cumulative ms.

    importtime lists a module after everything it imported, one indent level (2 spaces) deeper
    per nesting, so walking the lines backwards the importer of a line at depth d is the last
    line seen at depth d - 1.
    """
    def is_project(name: str) -> bool:
        return name.split(".")[0] in PROJECT_PACKAGES

    last_at_depth: dict[int, str] = {}
    found = []
    for name, cumulative, _ in reversed(rows):
        depth = (len(name) - len(name.lstrip(" "))) // 2
        module = name.strip()
        last_at_depth[depth] = module
        parent = last_at_depth.get(depth - 1)
        if parent and is_project(parent) and not is_project(module):
            found.append((module, cumulative))
    return sorted(found, key=lambda row: row[1], reverse=True)[:TOP]


def run() -> ImportResult:
    """Measure and print; returns the figures (ms)."""
    _python(ALONE)
    _python(WITH_APP)
    alone, with_app, wall_alone, wall_with_app = [], [], [], []
    for _ in range(RUNS):
        figures, wall, _ = _python(ALONE)
        alone.append(figures["azure_functions"])
        wall_alone.append(wall)
        figures, wall, _ = _python(WITH_APP)
        with_app.append(figures)
        wall_with_app.append(wall)
    _, _, stderr = _python(IMPORTTIME, "-X", "importtime")

    rows = _parse(stderr)
    ms = 1000
    result = ImportResult(
        azure_functions_ms=statistics.median(alone) * ms,
        function_app_ms=statistics.median(f["function_app"] for f in with_app) * ms,
        difference_ms=(statistics.median(f["azure_functions"] + f["function_app"] for f in with_app)
                       - statistics.median(alone)) * ms,
        wall_alone_ms=statistics.median(wall_alone) * ms,
        wall_with_app_ms=statistics.median(wall_with_app) * ms,
        top=sorted(rows, key=lambda row: row[1], reverse=True)[:TOP],
        dependencies=_direct_dependencies(rows),
    )
    heading(f"Import time (fresh subprocesses, warm .pyc, median of {RUNS} runs, ms)")
    table(["measure", "median ms"], [
        ["A: import azure.functions (in-process timer)", result.azure_functions_ms],
        ["B: import function_app after azure.functions", result.function_app_ms],
        ["B total − A (both in-process timers)", result.difference_ms],
        ["A: whole process wall clock", result.wall_alone_ms],
        ["B: whole process wall clock", result.wall_with_app_ms],
        ["B − A wall clock", result.wall_with_app_ms - result.wall_alone_ms],
    ])
    print(f"python -X importtime: top {TOP} by cumulative time of what `import function_app` loads "
          "beyond azure.functions (indent = nesting)")
    table(["module", "cumulative ms", "self ms"], [[name, cum, own] for name, cum, own in result.top])
    print("third-party modules imported directly by function_app / functions / shared_code (cumulative; a module\n"
          "already loaded by an earlier import costs ~0 here)")
    table(["module", "cumulative ms"], [list(row) for row in result.dependencies])
    return result
