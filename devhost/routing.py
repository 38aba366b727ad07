"""HTTP trigger routes: ASP.NET-style route templates compiled to regular expressions.

Supported template syntax (what the Functions host accepts in ``route=``):

- literal segments, matched case-insensitively: ``files/latest``;
- parameters ``{id}`` (one segment), with an optional constraint ``{id:int}`` (also ``long``,
  ``guid``, ``alpha``, ``bool``, ``double``, ``float``, ``decimal``), optional ``{id?}``, a default
  ``{id=7}`` (makes it optional), and a trailing catch-all ``{*rest}`` / ``{**rest}`` that spans
  slashes; several parameters may share a segment with literals: ``{name}.{ext}``;
- ``{{`` and ``}}`` for literal braces.

When several routes match a path, the most specific wins, as in ASP.NET Core's route precedence:
segment by segment, literal < mixed segment < constrained parameter < parameter < catch-all;
ties keep registration order.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

DEFAULT_ROUTE_PREFIX = "api"

# One segment only (no "/"); matched with re.IGNORECASE.
CONSTRAINTS: dict[str, str] = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "bool": r"true|false",
    "guid": r"\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?",
    "alpha": r"[a-z]+",
    "double": r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?",
    "float": r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?",
    "decimal": r"[-+]?(?:\d+\.?\d*|\.\d+)",
}

# Precedence digit of one segment (lower = more specific), as in ASP.NET Core's RoutePrecedence.
_LITERAL, _MIXED, _CONSTRAINED, _PARAMETER, _CATCH_ALL = 1, 2, 3, 4, 5

_PARAMETER_BODY = re.compile(
    r"^(?P<star>\*{1,2})?(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"(?P<constraints>(?::[A-Za-z]+)*)(?:(?P<optional>\?)|=(?P<default>[^{}]*))?$"
)


class RouteTemplateError(ValueError):
    """A route template cannot be compiled; the message names the template and the problem."""


@dataclass(frozen=True)
class _Parameter:
    name: str
    pattern: str
    optional: bool
    catch_all: bool
    constrained: bool
    default: str | None


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled template. ``match(path)`` gives the route parameters or ``None``."""

    template: str
    regex: re.Pattern[str]
    precedence: tuple[int, ...]
    groups: dict[str, str]  # regex group name -> parameter name
    defaults: dict[str, str]

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters (name → value) if ``path`` (decoded, leading ``/``) matches, else
        ``None``. A trailing ``/`` is ignored; an absent optional parameter is left out."""
        if path.endswith("/"):
            path = path.rstrip("/")
        found = self.regex.match(path)
        if found is None:
            return None
        params = dict(self.defaults)
        for group, name in self.groups.items():
            value = found.group(group)
            if value is not None and value != "":
                params[name] = value
        return params


def _split_segment(template: str, segment: str) -> list[str | _Parameter]:
    """Literal text and parameters of one segment, in order."""
    parts: list[str | _Parameter] = []
    literal, i = [], 0
    while i < len(segment):
        char = segment[i]
        if segment.startswith("{{", i) or segment.startswith("}}", i):
            literal.append(char)
            i += 2
        elif char == "{":
            end = segment.find("}", i)
            if end < 0:
                raise RouteTemplateError(f"route {template!r}: unclosed '{{' in segment {segment!r}")
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_parameter(template, segment[i + 1:end]))
            i = end + 1
        elif char == "}":
            raise RouteTemplateError(f"route {template!r}: unmatched '}}' in segment {segment!r}")
        else:
            literal.append(char)
            i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def _parameter(template: str, body: str) -> _Parameter:
    found = _PARAMETER_BODY.match(body)
    if found is None:
        raise RouteTemplateError(f"route {template!r}: invalid parameter {{{body}}}")
    names = [c for c in found.group("constraints").split(":") if c]
    patterns = []
    for constraint in names:
        if constraint.lower() not in CONSTRAINTS:
            raise RouteTemplateError(
                f"route {template!r}: unsupported constraint {constraint!r} "
                f"(supported: {', '.join(sorted(CONSTRAINTS))})"
            )
        patterns.append(CONSTRAINTS[constraint.lower()])
    catch_all = bool(found.group("star"))
    if catch_all:
        pattern = ".*"
    elif patterns:
        # Every constraint must hold: lookaheads for all but the last.
        pattern = "".join(f"(?=(?:{p})(?:/|$))" for p in patterns[:-1]) + f"(?:{patterns[-1]})"
    else:
        pattern = "[^/]+"
    default = found.group("default")
    return _Parameter(
        name=found.group("name"),
        pattern=pattern,
        optional=bool(found.group("optional")) or default is not None,
        catch_all=catch_all,
        constrained=bool(patterns),
        default=default,
    )


def compile_template(route: str, prefix: str = "") -> RouteTemplate:
    """Compile ``prefix/route`` (e.g. prefix ``"api"``, route ``"files/{id:int}"``).

    Raises :class:`RouteTemplateError` for malformed syntax, an unknown constraint, a repeated
    parameter name, or a catch-all that is not the last segment.
    """
    route = route.strip()
    if route.startswith("~"):
        route = route[1:]
    full = "/".join(part for part in (prefix.strip("/"), route.strip("/")) if part)
    segments = full.split("/") if full else []
    regex, precedence = [], []
    groups: dict[str, str] = {}
    defaults: dict[str, str] = {}
    seen: set[str] = set()
    for index, segment in enumerate(segments):
        if segment == "":
            raise RouteTemplateError(f"route {route!r}: empty segment")
        parts = _split_segment(route, segment)
        params = [p for p in parts if isinstance(p, _Parameter)]
        for param in params:
            if param.name.lower() in seen:
                raise RouteTemplateError(f"route {route!r}: parameter {param.name!r} appears twice")
            seen.add(param.name.lower())
            if param.catch_all and (index != len(segments) - 1 or len(parts) != 1):
                raise RouteTemplateError(f"route {route!r}: a catch-all must be the whole last segment")
            if param.default is not None:
                defaults[param.name] = param.default
        pieces = []
        for part in parts:
            if isinstance(part, str):
                pieces.append(re.escape(part))
            else:
                group = f"p{len(groups)}"
                groups[group] = part.name
                pieces.append(f"(?P<{group}>{part.pattern})")
        body = "".join(pieces)
        if len(parts) == 1 and params and (params[0].optional or params[0].catch_all):
            regex.append(f"(?:/{body})?")
        else:
            regex.append(f"/{body}")
        if not params:
            precedence.append(_LITERAL)
        elif len(parts) > 1:
            precedence.append(_MIXED)
        elif params[0].catch_all:
            precedence.append(_CATCH_ALL)
        elif params[0].constrained:
            precedence.append(_CONSTRAINED)
        else:
            precedence.append(_PARAMETER)
    return RouteTemplate(
        template=route,
        regex=re.compile("^" + "".join(regex) + "$", re.IGNORECASE | re.DOTALL),
        precedence=tuple(precedence),
        groups=groups,
        defaults=defaults,
    )


@dataclass(frozen=True)
class Route:
    """One HTTP-triggered function: its compiled template, allowed methods (upper case; ``None``
    = every method) and an opaque ``target`` the server invokes."""

    template: RouteTemplate
    methods: frozenset[str] | None
    target: Any = field(compare=False)


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    params: dict[str, str]


@dataclass(frozen=True)
class MethodNotAllowed:
    """The path matched, but no matching route accepts the method; ``allowed`` is sorted."""

    allowed: list[str]


class RouteTable:
    """Routes ordered by precedence (most specific first, then registration order)."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = sorted(routes, key=lambda route: route.template.precedence)

    def resolve(self, method: str, path: str) -> RouteMatch | MethodNotAllowed | None:
        """The route for ``method`` (any case) and decoded ``path``; :class:`MethodNotAllowed` when
        only the method is wrong; ``None`` when no route matches the path."""
        method = method.upper()
        allowed: set[str] = set()
        for route in self.routes:
            params = route.template.match(path)
            if params is None:
                continue
            if route.methods is None or method in route.methods:
                return RouteMatch(route, params)
            allowed |= route.methods
        return MethodNotAllowed(sorted(allowed)) if allowed else None


def normalise_methods(methods: Iterable[Any] | None) -> frozenset[str] | None:
    """``["get", HttpMethod.POST]`` → ``frozenset({"GET", "POST"})``; ``None``/empty → ``None``."""
    if not methods:
        return None
    return frozenset(str(getattr(m, "value", m)).upper() for m in methods)


def read_route_prefix(host_json: Path) -> str:
    """``extensions.http.routePrefix`` of ``host.json`` (``"api"`` when absent or no file)."""
    try:
        document = json.loads(host_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return DEFAULT_ROUTE_PREFIX
    prefix = document.get("extensions", {}).get("http", {}).get("routePrefix", DEFAULT_ROUTE_PREFIX)
    return str(prefix).strip("/")
