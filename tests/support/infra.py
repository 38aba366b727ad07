"""Read what infra/ declares, without a Bicep compiler.

The Bicep is data-driven on purpose: containers, queues, secrets and plain app settings live in
JSON files under ``infra/app/`` (loaded with ``loadJsonContent``), so most checks read JSON. The
few facts that live only in Bicep text (the ``computedSettings`` object of ``api.bicep``, flags,
role ids) are read with the explicit scanners below, which understand exactly this much Bicep:
``//`` and ``/* */`` comments, single-quoted strings with ``\\'`` escapes and ``${...}``
interpolation, and nesting of ``{}``, ``[]`` and ``()``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
APP = INFRA / "app"

KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=.+\)$")


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
    ``@Microsoft.KeyVault(SecretUri=...)``) and the computed settings (raw Bicep expressions)."""
    settings: dict[str, str] = dict(load_json("app-settings.json"))
    settings.update({c["setting"]: c["name"] for c in load_json("blob-containers.json")})
    settings.update({
        s["setting"]: f"@Microsoft.KeyVault(SecretUri=https://vault/secrets/{s['secretName']})"
        for s in load_json("key-vault-secrets.json")
    })
    settings.update(object_entries(bicep("app/api.bicep"), "var computedSettings ="))
    return settings
