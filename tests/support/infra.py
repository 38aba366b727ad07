"""Read what infra/ declares, without a Bicep compiler, and scan it with checkov.

The Bicep is data-driven on purpose: containers, queues, secrets and plain app settings live in
JSON files under ``infra/app/`` (loaded with ``loadJsonContent``), so most checks read JSON. The
few facts that live only in Bicep text (the ``computedSettings`` object of ``api.bicep``, flags,
role ids) are read with the explicit scanners below, which understand exactly this much Bicep:
``//`` and ``/* */`` comments, single-quoted strings with ``\\'`` escapes and ``${...}``
interpolation, and nesting of ``{}``, ``[]`` and ``()``.

checkov runs from its own virtualenv (``.venv-iac``, made by ``make test`` from
``requirements-iac.txt``) with every network lookup off, so the scan is reproducible offline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
APP = INFRA / "app"

KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=.+\)$")

IAC_VENV = ROOT / ".venv-iac"
#: An inline suppression as checkov reads it from a Bicep line comment.
CHECKOV_SKIP = re.compile(r"^\s*// checkov:skip=(?P<check>CKV2?_AZURE_\d+): (?P<reason>\S.*)$")


def load_json(name: str) -> Any:
    """A JSON data file of ``infra/app/`` (e.g. ``cosmos-containers.json``)."""
    return json.loads((APP / name).read_text(encoding="utf-8"))


def bicep(name: str) -> str:
    """The text of a Bicep file, ``name`` relative to ``infra/``."""
    return (INFRA / name).read_text(encoding="utf-8")


def strip_comments(text: str) -> str:
    """``text`` with comments blanked out (strings kept), same length and line breaks."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append(re.sub(r"[^\n]", " ", text[i:end]))
            i = end
        elif text[i] == "'":
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the single-quoted string starting at ``start`` (multi-line ''' too)."""
    if text.startswith("'''", start):
        end = text.find("'''", start + 3)
        return len(text) if end < 0 else end + 3
    i = start + 1
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if depth == 0 and ch == "'":
            return i + 1
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if depth and ch == "}":
            depth -= 1
        i += 1
    return len(text)


def unbalanced(text: str) -> str | None:
    """The first bracket problem in Bicep ``text`` (outside strings and comments), else ``None``."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[tuple[str, int]] = []
    code = strip_comments(text)
    i = 0
    while i < len(code):
        ch = code[i]
        if ch == "'":
            i = _string_end(code, i)
            continue
        line = code.count("\n", 0, i) + 1
        if ch in "([{":
            stack.append((ch, line))
        elif ch in ")]}":
            if not stack or stack[-1][0] != pairs[ch]:
                return f"unexpected {ch!r} on line {line}"
            stack.pop()
        i += 1
    if stack:
        return f"{stack[-1][0]!r} opened on line {stack[-1][1]} is never closed"
    return None


def object_entries(text: str, declaration: str) -> dict[str, str]:
    """Top-level ``key: value`` entries of the object literal after ``declaration`` (e.g.
    ``var computedSettings =``), values as raw Bicep text. Raises ``LookupError`` if absent."""
    code = strip_comments(text)
    start = code.find(declaration)
    if start < 0:
        raise LookupError(f"{declaration!r} not found")
    i = code.index("{", start) + 1
    entries: dict[str, str] = {}
    depth = 0
    current = ""
    while i < len(code):
        ch = code[i]
        if ch == "'":
            end = _string_end(code, i)
            current += code[i:end]
            i = end
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        if ch == "\n" and depth == 0:
            _add_entry(entries, current)
            current = ""
        else:
            current += ch
        i += 1
    _add_entry(entries, current)
    return entries


def _add_entry(entries: dict[str, str], line: str) -> None:
    match = re.match(r"\s*('(?:[^'\\]|\\.)*'|[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$", line, re.DOTALL)
    if match:
        entries[match.group(1).strip("'")] = match.group(2)


def azure_app_settings() -> dict[str, str]:
    """The function app's settings as ``api.bicep`` assembles them: plain values from
    ``app-settings.json``, blob container names, Key Vault references (written as
    ``@Microsoft.KeyVault(SecretUri=...)``) and the computed settings (raw Bicep expressions).
    A name from two sources keeps the last (test_infra checks there is none)."""
    settings: dict[str, str] = dict(load_json("app-settings.json"))
    settings.update({c["setting"]: c["name"] for c in load_json("blob-containers.json")})
    settings.update({
        s["setting"]: f"@Microsoft.KeyVault(SecretUri=https://vault/secrets/{s['secretName']})"
        for s in load_json("key-vault-secrets.json")
    })
    settings.update(computed_settings())
    return settings


def computed_settings() -> dict[str, str]:
    """``api.bicep``'s ``computedSettings`` list (``{ name: 'X', value: <expr> }`` one a line) as
    ``{name: raw Bicep expression}``. Raises ``LookupError`` if the list is absent or empty."""
    code = strip_comments(bicep("app/api.bicep"))
    block = re.search(r"^var computedSettings = \[\n(.*?)^\]", code, re.MULTILINE | re.DOTALL)
    if not block:
        raise LookupError("var computedSettings = [ ... ] not found in api.bicep")
    entries = {}
    for line in block.group(1).splitlines():
        if line.strip():
            match = re.fullmatch(r"\s*\{ name: '([^']+)', value: (.+) \}\s*", line)
            if not match:
                raise LookupError(f"unexpected line in computedSettings: {line.strip()}")
            entries[match.group(1)] = match.group(2)
    if not entries:
        raise LookupError("computedSettings is empty")
    return entries


@dataclass(frozen=True)
class Resource:
    """A top-level ``resource`` or ``module`` declaration: its symbol, type (or module path), the
    text between ``=`` and its body's ``{`` (loop and condition, e.g. ``[for c in x: if (y)``),
    and its top-level entries (raw Bicep text, see :func:`object_entries`)."""

    symbol: str
    type: str
    header: str
    entries: dict[str, str]


_DECLARATION = re.compile(r"^(resource|module) (\w+) '([^']+)'( existing)? =([^{\n]*)\{", re.MULTILINE)


def declarations(text: str) -> list[Resource]:
    """Every top-level resource and module declared in Bicep ``text``, in order."""
    code = strip_comments(text)
    found = []
    for match in _DECLARATION.finditer(code):
        entries = object_entries(code[match.start():], match.group(0)[:-1])
        found.append(Resource(match.group(2), match.group(3), match.group(5).strip(), entries))
    return found


def checkov_available() -> bool:
    return (IAC_VENV / "bin" / "checkov").is_file()


def run_checkov(directory: Path) -> dict[str, Any]:
    """``checkov -d directory --framework bicep`` as JSON (summary + results). Offline: no
    Prisma Cloud guideline download, no PyPI update check. Raises ``RuntimeError`` on a checkov
    crash (exit codes 0 = clean, 1 = failed checks are both results)."""
    env = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE", "LOG_LEVEL": "WARNING"}
    completed = subprocess.run(
        [str(IAC_VENV / "bin" / "checkov"), "--directory", str(directory), "--framework", "bicep",
         "--skip-download", "--output", "json", "--compact"],
        capture_output=True, text=True, env=env, timeout=300, check=False)
    if completed.returncode not in (0, 1) or not completed.stdout.strip():
        raise RuntimeError(f"checkov exited {completed.returncode}: {completed.stderr[-2000:]}")
    report = json.loads(completed.stdout)
    # One framework gives one report; an empty scan gives a bare summary.
    return report if "results" in report else {"summary": report, "results": {}}


def unparsable_bicep_files() -> dict[str, str]:
    """``{path: error}`` for every ``.bicep`` file under ``infra/`` that pycep-parser (checkov's
    Bicep parser) rejects; a rejected file is not scanned at all."""
    script = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from pycep import BicepParser\n"
        "parser, errors = BicepParser(), {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        parser.parse(file_path=Path(name))\n"
        "    except Exception as error:\n"
        "        errors[name] = str(error).splitlines()[0]\n"
        "print(json.dumps(errors))\n"
    )
    files = [str(p) for p in sorted(INFRA.rglob("*.bicep"))]
    completed = subprocess.run([str(IAC_VENV / "bin" / "python"), "-c", script, *files],
                               capture_output=True, text=True, timeout=120, check=True)
    return json.loads(completed.stdout)


def copy_without_skips(destination: Path) -> Path:
    """A copy of ``infra/`` under ``destination`` with every ``checkov:skip`` line removed."""
    target = destination / "infra"
    shutil.copytree(INFRA, target)
    for path in target.rglob("*.bicep"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(line for line in lines if "checkov:skip=" not in line), encoding="utf-8")
    return target
