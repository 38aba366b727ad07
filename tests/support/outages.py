"""Storage faults injected at one kind of Cosmos DB request, for the lifecycle tests' crash-safety
checks (until a test freezes the emulator itself): an outage for that request, or a write that
lands and whose answer is lost (a timeout is not a rollback)."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from shared_code.platform import cosmos
from shared_code.platform.errors import ServiceUnavailable


@contextlib.contextmanager
def _wrapped(operation: str, wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Iterator[None]:
    original = getattr(cosmos, operation)
    setattr(cosmos, operation, wrapper(original))
    try:
        yield
    finally:
        setattr(cosmos, operation, original)


def cosmos_outage(operation: str, spec: cosmos.ContainerSpec) -> contextlib.AbstractContextManager[None]:
    """Inside the block, ``cosmos.<operation>`` (``read_item``, ``delete_item``, ``query_page`` …) on
    container ``spec`` raises :class:`ServiceUnavailable` without reaching the store."""
    def wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
        def failing(target: cosmos.ContainerSpec, *args: Any, **kwargs: Any) -> Any:
            if target is spec:
                raise ServiceUnavailable(detail="injected outage")
            return original(target, *args, **kwargs)
        return failing
    return _wrapped(operation, wrapper)


def lost_answer(spec: cosmos.ContainerSpec, when: Callable[[dict], bool]) -> contextlib.AbstractContextManager[None]:
    """Inside the block, a ``cosmos.replace_item`` on ``spec`` whose body satisfies ``when`` lands,
    then raises :class:`ServiceUnavailable`, as when the answer to a write that was applied is lost."""
    def wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
        def lands_then_times_out(target: cosmos.ContainerSpec, body: dict, etag: str) -> Any:
            result = original(target, body, etag)
            if target is spec and when(body):
                raise ServiceUnavailable(detail="the answer was lost")
            return result
        return lands_then_times_out
    return _wrapped("replace_item", wrapper)
