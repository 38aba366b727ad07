"""Calling user functions the way the Python worker does, and recording every invocation.

- Binding: the trigger value goes to the parameter named like the trigger binding
  (``get_trigger().name``); a parameter named ``context`` gets a :class:`azure.functions.Context`.
  Other bindings (inputs, ``func.Out`` outputs) are not provided by the devhost, so a function that
  needs them is refused at start-up with :class:`UnsupportedFunction`.
- Execution: ``async def`` functions run on the event loop; plain functions run in a thread pool of
  ``PYTHON_THREADPOOL_THREAD_COUNT`` threads (default ``min(32, cpu + 4)``, the worker's default).
- Records: each invocation gives one :class:`InvocationRecord` (kept in memory, newest last) and one
  log line on logger ``devhost``; failures are logged with their traceback.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
import os
import threading
import time
import typing
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

import anyio
import anyio.to_thread
import azure.functions as func

from devhost.settings import get_number

log = logging.getLogger("devhost")

TRIGGER_KINDS = {"httpTrigger": "http", "timerTrigger": "timer", "blobTrigger": "blob"}


class UnsupportedFunction(ValueError):
    """The devhost cannot run this function (unknown trigger or a binding it does not provide)."""


@dataclass(frozen=True)
class BoundFunction:
    """A user function ready to call: ``kind`` is ``"http"``, ``"timer"`` or ``"blob"``; the trigger
    value is passed as keyword ``binding_name``; ``wants_context`` adds ``context=``."""

    name: str
    kind: str
    trigger: Any
    user_function: Callable[..., Any]
    binding_name: str
    binding_annotation: Any
    wants_context: bool
    is_async: bool


def bind(function: func.Function) -> BoundFunction:
    """Inspect an indexed function (from ``app.get_functions()``).

    Raises :class:`UnsupportedFunction` for a trigger kind other than HTTP/timer/blob, or a
    required parameter that is neither the trigger binding nor ``context``.
    """
    name = function.get_function_name()
    trigger = function.get_trigger()
    binding_type = trigger.get_binding_name() if trigger is not None else None
    kind = TRIGGER_KINDS.get(binding_type or "")
    if trigger is None or kind is None:
        raise UnsupportedFunction(f"function {name}: devhost does not run {binding_type} triggers")
    user_function = function.get_user_function()
    signature = inspect.signature(user_function)
    parameters = signature.parameters
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    if trigger.name not in parameters and not has_var_kw:
        raise UnsupportedFunction(f"function {name}: no parameter named {trigger.name!r} for its trigger")
    others = {b.name: b.get_binding_name() for b in function.get_bindings() if b is not trigger}
    for parameter in parameters.values():
        if parameter.name in (trigger.name, "context") or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if parameter.default is parameter.empty:
            what = others.get(parameter.name, "no binding")
            raise UnsupportedFunction(
                f"function {name}: parameter {parameter.name!r} ({what}) is not provided by devhost"
            )
    annotation = _annotation(user_function, trigger.name)
    return BoundFunction(
        name=name,
        kind=kind,
        trigger=trigger,
        user_function=user_function,
        binding_name=trigger.name,
        binding_annotation=annotation,
        wants_context="context" in parameters,
        is_async=inspect.iscoroutinefunction(inspect.unwrap(user_function)),
    )


def _annotation(user_function: Callable[..., Any], parameter: str) -> Any:
    """The evaluated annotation of ``parameter`` (string annotations resolved when possible)."""
    try:
        hints = typing.get_type_hints(inspect.unwrap(user_function))
    except Exception:  # unresolvable forward reference: fall back to the raw annotation
        hints = {}
    raw = inspect.signature(user_function).parameters.get(parameter)
    annotation = hints.get(parameter, raw.annotation if raw is not None else inspect.Parameter.empty)
    return {"bytes": bytes, "str": str}.get(annotation, annotation) if isinstance(annotation, str) else annotation


class InvocationContext(func.Context):
    """The ``context`` argument: what the Python worker gives, minus tracing and retry state."""

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local = threading.local()
        self._thread_local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> threading.local:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> None:
        return None

    @property
    def retry_context(self) -> None:
        return None


@dataclass(frozen=True)
class InvocationRecord:
    """One finished invocation.

    ``status`` is ``"succeeded"`` or ``"failed"`` (the function raised; ``error`` holds
    ``"ExcType: message"``). ``http_status`` is the response status of HTTP invocations.
    ``details`` holds trigger facts (``method``/``path``, ``past_due``, ``blob``/``etag``/``attempt``).
    ``seq`` increases by one per record, so ``r.seq > mark`` selects later invocations.
    """

    seq: int
    function: str
    trigger: str
    status: str
    duration_ms: float
    error: str | None
    invocation_id: str
    started_at: datetime
    http_status: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class InvocationLog:
    """Thread-safe list of the most recent records (``limit``), with waiting."""

    def __init__(self, limit: int = 1000) -> None:
        self._records: deque[InvocationRecord] = deque(maxlen=limit)
        self._changed = threading.Condition()
        self._seq = itertools.count(1)

    def add(self, **fields: Any) -> InvocationRecord:
        """Create, store and return a record (``seq`` is assigned here)."""
        with self._changed:
            record = InvocationRecord(seq=next(self._seq), **fields)
            self._records.append(record)
            self._changed.notify_all()
        return record

    def snapshot(self) -> list[InvocationRecord]:
        """A copy of the records, oldest first."""
        with self._changed:
            return list(self._records)

    def wait_for(self, function: str, predicate: Callable[[InvocationRecord], bool] | None = None,
                 timeout: float = 10) -> InvocationRecord:
        """The oldest record of ``function`` that satisfies ``predicate``, waiting up to ``timeout``
        seconds for it. Raises :class:`TimeoutError` listing what was recorded for ``function``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for record in self._records:
                    if record.function == function and (predicate is None or predicate(record)):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(r.seq, r.status, r.http_status, dict(r.details)) for r in self._records if r.function == function]
                    raise TimeoutError(f"no matching invocation of {function} within {timeout}s; recorded: {seen}")
                self._changed.wait(remaining)


def default_thread_count() -> int:
    """``PYTHON_THREADPOOL_THREAD_COUNT`` or ``min(32, cpu + 4)``, like the Python worker."""
    return int(get_number("PYTHON_THREADPOOL_THREAD_COUNT", min(32, (os.cpu_count() or 1) + 4), minimum=1))


class Invoker:
    """Calls bound functions and records the outcome in :attr:`log`."""

    def __init__(self, function_directory: str, threads: int | None = None) -> None:
        self.function_directory = function_directory
        self.log = InvocationLog()
        self._threads = threads or default_thread_count()
        self._limiter: anyio.CapacityLimiter | None = None

    async def call(self, bound: BoundFunction, value: Any, invocation_id: str) -> Any:
        """Run the function with ``value`` as its trigger argument; returns what it returns and
        raises what it raises. Must be awaited on the devhost's event loop."""
        kwargs: dict[str, Any] = {bound.binding_name: value}
        if bound.wants_context:
            kwargs["context"] = InvocationContext(invocation_id, bound.name, self.function_directory)
        if bound.is_async:
            return await bound.user_function(**kwargs)
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._threads)
        result = await anyio.to_thread.run_sync(functools.partial(bound.user_function, **kwargs), limiter=self._limiter)
        if inspect.isawaitable(result):
            result = await result
        return result

    def record(self, bound: BoundFunction, *, invocation_id: str, started_at: datetime, duration_ms: float,
               error: BaseException | None = None, http_status: int | None = None, summary: str = "",
               **details: Any) -> InvocationRecord:
        """Store one record and write its log line: ``name [kind] outcome in N ms (summary)``.
        A failure is logged at ERROR with the traceback of ``error``."""
        status = "failed" if error is not None else "succeeded"
        record = self.log.add(
            function=bound.name,
            trigger=bound.kind,
            status=status,
            duration_ms=duration_ms,
            error=f"{type(error).__name__}: {error}" if error is not None else None,
            invocation_id=invocation_id,
            started_at=started_at,
            http_status=http_status,
            details=details,
        )
        outcome = f"{status} {http_status}" if http_status is not None else status
        suffix = f" ({summary})" if summary else ""
        if error is None:
            log.info("%s [%s] %s in %.1f ms%s", bound.name, bound.kind, outcome, duration_ms, suffix)
        else:
            log.error("%s [%s] %s in %.1f ms%s: %s", bound.name, bound.kind, outcome, duration_ms, suffix,
                      record.error, exc_info=error)
        return record

    async def invoke(self, bound: BoundFunction, value: Any, *, summary: str = "", **details: Any) -> InvocationRecord:
        """Call and record in one step (timer and blob triggers). Never raises for a failure of
        the function: the record says ``failed``."""
        invocation_id = str(uuid.uuid4())
        started_at = datetime.now(timezone.utc)
        start = time.perf_counter()
        error: BaseException | None = None
        try:
            await self.call(bound, value, invocation_id)
        except Exception as exc:  # the user's function failed: recorded and logged with traceback
            error = exc
        return self.record(bound, invocation_id=invocation_id, started_at=started_at,
                           duration_ms=(time.perf_counter() - start) * 1000, error=error, summary=summary, **details)
