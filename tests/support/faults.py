"""Fault harness: stall Cosmos DB or Blob Storage at a chosen point of a request, as a real
timeout does.

A real storage timeout is not a failure that undid the write: the request reached the service,
the caller gave up waiting, and the write lands later (or landed already and only the answer was
lost). This harness reproduces exactly that against the real emulators, so a test can check what
the app answers (503) and what state is left once the write lands.

How: the app talks to each emulator through a :class:`FaultProxy`, a small TCP proxy on
127.0.0.1 that forwards bytes verbatim and reads the HTTP/1.1 framing of both directions with
``h11`` (it never changes a byte). For every request head it sees it can

- **freeze** the emulator process (SIGSTOP) right *before* forwarding the Nth matching request:
  the request sits in the frozen server's socket, the app's read times out
  (``STORAGE_TIMEOUT_SECONDS``, 1 s under :func:`fault_stack`) and answers 503, every other
  request to that emulator stalls too (an outage), and after :meth:`FaultProxy.resume` (SIGCONT)
  the emulator processes the request: the write lands after the timeout;
- freeze it right *after* the emulator answered the Nth matching request (``after_response``):
  the write landed, the proxy holds the answer until the resume, the app times out: a lost
  response;
- **hold** only the Nth matching request (the emulator keeps serving everything else) until
  released: one write stuck in the network while later requests overtake it;
- run an **action** just before forwarding the Nth matching request (e.g. re-issue an item
  between another request's read and its write).

Unlike a bare SIGSTOP, the proxy keeps the upstream connection open after the app hung up, until
the emulator has answered what it received; a client's FIN reaching a Node server mid-request
would abort it, which a real service does not do to a request it has accepted. An incomplete
request (the app gave up while sending the body) is cut off, as a real server discards it.

Freezing stalls every client of that emulator, so fault tests run on their own emulators
(:func:`fault_stack`), never the session's shared ones. Request kinds are matched with
:func:`cosmos_op` and :func:`blob_op` (or any predicate on :class:`RequestHead`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import h11

from devhost.emulators import Emulators, azurite_connection_string, running_emulators

log = logging.getLogger("tests.faults")

#: Seconds the app waits for a storage answer under :func:`fault_stack` (``STORAGE_TIMEOUT_SECONDS``).
FAULT_TIMEOUT_SECONDS = 1


@dataclass(frozen=True)
class RequestHead:
    """A request as the emulator receives it: method, path (unquoted), query and lower-cased headers."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]

    @property
    def cosmos(self) -> tuple[str, str, str | None] | None:
        """``(operation, container, item id | None)`` of a Cosmos DB document request, else ``None``.

        Operations: ``read``, ``create``, ``upsert``, ``query``, ``batch``, ``replace``, ``patch``, ``delete``.
        """
        parts = self.path.strip("/").split("/")
        if len(parts) < 5 or parts[0] != "dbs" or parts[2] != "colls" or parts[4] != "docs":
            return None
        item_id = parts[5] if len(parts) > 5 else None
        if item_id is None and self.method == "POST":
            if self.headers.get("x-ms-documentdb-isquery", "").lower() == "true":
                return "query", parts[3], None
            if self.headers.get("x-ms-cosmos-is-batch-request", "").lower() == "true":
                return "batch", parts[3], None
            if self.headers.get("x-ms-documentdb-is-upsert", "").lower() == "true":
                return "upsert", parts[3], None
            return "create", parts[3], None
        operation = {"GET": "read", "PUT": "replace", "PATCH": "patch", "DELETE": "delete"}.get(self.method)
        return (operation, parts[3], item_id) if operation and item_id else None

    @property
    def blob(self) -> tuple[str, str, str] | None:
        """``(operation, container, blob name)`` of a Blob Storage blob request, else ``None``.

        Operations: ``put_blob`` (block blob upload in one request), ``create_append_blob``,
        ``put_block``, ``put_block_list``, ``append_block``, ``get``, ``properties``, ``delete``.
        """
        parts = self.path.strip("/").split("/", 2)  # account / container / blob
        if len(parts) < 3 or not parts[2]:
            return None
        comp = self.query.get("comp")
        if self.method == "PUT":
            if comp is None:
                kind = self.headers.get("x-ms-blob-type", "")
                operation = "create_append_blob" if kind == "AppendBlob" else "put_blob"
            else:
                operation = {"block": "put_block", "blocklist": "put_block_list", "appendblock": "append_block"}.get(comp, comp)
        else:
            operation = {"GET": "get", "HEAD": "properties", "DELETE": "delete"}.get(self.method, self.method.lower())
        return operation, parts[1], parts[2]


Match = Callable[[RequestHead], bool]


COSMOS_WRITES = ("create", "upsert", "replace", "patch", "delete", "batch")


def cosmos_op(operation: str | tuple[str, ...], container: str | None = None) -> Match:
    """Matches Cosmos DB document requests of ``operation`` (one name or several, see
    :attr:`RequestHead.cosmos`; :data:`COSMOS_WRITES` for any write), in ``container`` if given."""
    operations = (operation,) if isinstance(operation, str) else operation
    def match(head: RequestHead) -> bool:
        found = head.cosmos
        return found is not None and found[0] in operations and container in (None, found[1])
    match.__name__ = f"cosmos {'/'.join(operations)} {container or '*'}"
    return match


def blob_op(operation: str, container: str | None = None) -> Match:
    """Matches Blob Storage requests of ``operation`` (see :attr:`RequestHead.blob`), in ``container`` if given."""
    def match(head: RequestHead) -> bool:
        found = head.blob
        return found is not None and found[0] == operation and container in (None, found[1])
    match.__name__ = f"blob {operation} {container or '*'}"
    return match


@dataclass
class Fault:
    """One armed fault: what it matches, which match it fires on, and what it did."""

    match: Match
    nth: int
    kind: str  # "freeze" | "freeze_after" | "hold" | "hold_after" | "action"
    action: Callable[[], None] | None = None
    seen: int = 0
    fired: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    request: RequestHead | None = None

    def wait_fired(self, timeout: float = 10) -> RequestHead:
        """Block until the fault fired; returns the request it fired on. Fails after ``timeout`` s."""
        if not self.fired.wait(timeout):
            raise AssertionError(f"{self.match.__name__} #{self.nth} never reached the emulator")
        assert self.request is not None
        return self.request


class _Link:
    """One proxied connection: the app's socket, the emulator's, and the HTTP framing of both."""

    def __init__(self, proxy: "FaultProxy", client: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream = socket.create_connection(("127.0.0.1", proxy.upstream_port))
        self.requests = h11.Connection(h11.SERVER)    # parses what the app sends
        self.responses = h11.Connection(h11.CLIENT)   # parses what the emulator answers
        self.pending: list[RequestHead] = []           # sent to the emulator, not yet fully answered
        self.held_answers: dict[int, Fault] = {}       # id(pending head) → the fault that holds its answer
        self.client_gone = False
        self.closed = False
        self.parse_failed = False

    # -- app → emulator ------------------------------------------------------------------------
    def pump_requests(self) -> None:
        try:
            while True:
                data = self.client.recv(1 << 16)
                if not data:
                    break
                for head in self._request_heads(data):
                    self.proxy._before_forward(self, head)
                self.upstream.sendall(data)
        except OSError:
            pass
        self._client_finished()

    def _request_heads(self, data: bytes) -> list[RequestHead]:
        if self.parse_failed:
            return []
        heads = []
        try:
            self.requests.receive_data(data)
            while True:
                event = self.requests.next_event()
                if event is h11.NEED_DATA:
                    break
                if isinstance(event, h11.Request):
                    target = urlsplit(event.target.decode("ascii"))
                    head = RequestHead(
                        event.method.decode("ascii"), unquote(target.path),
                        {k: v[0] for k, v in parse_qs(target.query).items()},
                        {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers},
                    )
                    with self.proxy._lock:
                        self.pending.append(head)
                        self.responses.send(h11.Request(method=event.method, target=event.target, headers=[("Host", "emulator")]))
                        self.responses.send(h11.EndOfMessage())
                    heads.append(head)
                elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
                    trailing, closed = self.requests.trailing_data
                    self.requests = h11.Connection(h11.SERVER)
                    if trailing:
                        self.requests.receive_data(trailing)
                    if closed:
                        self.requests.receive_data(b"")
                elif isinstance(event, h11.ConnectionClosed):
                    break
        except h11.ProtocolError as exc:
            log.warning("%s: cannot follow the request framing (%s); forwarding blindly", self.proxy.name, exc)
            self.parse_failed = True
        return heads

    def _client_finished(self) -> None:
        with self.proxy._lock:
            self.client_gone = True
            body_incomplete = self.requests.their_state is h11.SEND_BODY
            idle = not self.pending
        if body_incomplete or idle or self.parse_failed:
            self.close()  # nothing was accepted, or everything was answered
        # else: the emulator answers what it received; pump_responses closes afterwards

    # -- emulator → app ------------------------------------------------------------------------
    def pump_responses(self) -> None:
        try:
            while True:
                data = self.upstream.recv(1 << 16)
                if not data:
                    break
                hold = self._track_responses(data)
                if hold is not None:
                    hold.released.wait()
                if not self.client_gone:
                    try:
                        self.client.sendall(data)
                    except OSError:
                        self.client_gone = True
                with self.proxy._lock:
                    done = self.client_gone and not self.pending
                if done:
                    break
        except OSError:
            pass
        self.close()

    def _track_responses(self, data: bytes) -> Fault | None:
        """Follow the answers in ``data``; returns the fault to hold them for, if one fires."""
        hold = None
        with self.proxy._lock:
            if self.parse_failed:
                return None
            try:
                self.responses.receive_data(data)
                while True:
                    event = self.responses.next_event()
                    if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                        break
                    if isinstance(event, h11.Response) and self.pending:
                        fault = self.held_answers.pop(id(self.pending[0]), None)
                        if fault is not None:
                            hold = self.proxy._answered(fault)
                    if isinstance(event, h11.EndOfMessage) and self.pending:
                        self.pending.pop(0)
                        if self.responses.our_state is h11.DONE and self.responses.their_state is h11.DONE:
                            self.responses.start_next_cycle()
            except h11.ProtocolError as exc:
                log.warning("%s: cannot follow the response framing (%s)", self.proxy.name, exc)
                self.parse_failed = True
                self.pending.clear()
            self.proxy._changed.notify_all()
        return hold

    def close(self) -> None:
        with self.proxy._lock:
            if self.closed:
                return
            self.closed = True
            self.pending.clear()
            self.proxy._changed.notify_all()
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class FaultProxy:
    """A TCP proxy in front of one emulator process that can freeze it at a chosen request."""

    def __init__(self, name: str, upstream_port: int, process: subprocess.Popen):
        self.name = name
        self.upstream_port = upstream_port
        self.process = process
        self.seen: list[RequestHead] = []
        self._faults: list[Fault] = []
        self._links: list[_Link] = []
        self._frozen = False
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"{name}-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            link = _Link(self, client)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=link.pump_requests, daemon=True).start()
            threading.Thread(target=link.pump_responses, daemon=True).start()

    # -- arming faults ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _armed(self, match: Match, nth: int, kind: str, action: Callable[[], None] | None = None) -> Iterator[Fault]:
        """Arm a fault for the block; on leaving, disarm it, resume the emulator, release what it
        held and wait until the emulator answered everything it received. Raises
        ``AssertionError`` on leaving if the request never came (the test would prove nothing)."""
        fault = Fault(match, nth, kind, action)
        with self._lock:
            self._faults.append(fault)
        try:
            yield fault
            fault.wait_fired(timeout=0)
        finally:
            with self._lock:
                self._faults.remove(fault)
            self.resume()
            fault.released.set()
            self.settle()

    def freeze(self, match: Match, nth: int = 1, *, after_response: bool = False) -> contextlib.AbstractContextManager[Fault]:
        """Inside the block, freeze the emulator when the ``nth`` request matching ``match`` reaches
        it (before it is processed, or with ``after_response`` once it was processed and answered);
        on leaving, resume it and wait until it answered everything it received."""
        return self._armed(match, nth, "freeze_after" if after_response else "freeze")

    def hold(self, match: Match, nth: int = 1, *, after_response: bool = False) -> contextlib.AbstractContextManager[Fault]:
        """Inside the block, hold back only the ``nth`` request matching ``match`` (or, with
        ``after_response``, only its answer, once the emulator processed it) while the emulator
        serves every other request; on leaving, forward it and wait until it was answered."""
        return self._armed(match, nth, "hold_after" if after_response else "hold")

    def before(self, match: Match, action: Callable[[], None], nth: int = 1) -> contextlib.AbstractContextManager[Fault]:
        """Inside the block, run ``action`` (in the proxy, so on its own connections) just before
        the ``nth`` request matching ``match`` is forwarded."""
        return self._armed(match, nth, "action", action)

    def count(self, match: Match) -> int:
        """How many requests matching ``match`` reached the emulator so far."""
        with self._lock:
            return sum(1 for head in self.seen if match(head))

    # -- firing ----------------------------------------------------------------------------------
    def _before_forward(self, link: _Link, head: RequestHead) -> None:
        with self._lock:
            self.seen.append(head)
            fired = []
            for fault in self._faults:
                if not fault.fired.is_set() and fault.match(head):
                    fault.seen += 1
                    if fault.seen == fault.nth:
                        fault.request = head
                        fired.append(fault)
        for fault in fired:
            log.info("%s: %s on %s %s", self.name, fault.kind, head.method, head.path)
            if fault.kind == "freeze":
                self._freeze()
                fault.fired.set()
            elif fault.kind in ("freeze_after", "hold_after"):
                with self._lock:
                    link.held_answers[id(head)] = fault
            elif fault.kind == "hold":
                fault.fired.set()
                fault.released.wait()
            else:
                assert fault.action is not None
                fault.action()
                fault.fired.set()

    def _answered(self, fault: Fault) -> Fault:
        """The emulator answered the request of ``fault``: freeze it (``freeze_after``) or not
        (``hold_after``); either way the answer waits for the fault's release."""
        if fault.kind == "freeze_after":
            self._freeze()
        fault.fired.set()
        return fault

    def _freeze(self) -> None:
        with self._lock:
            if not self._frozen:
                os.kill(self.process.pid, signal.SIGSTOP)
                self._frozen = True

    def resume(self) -> None:
        """Let the emulator run again (SIGCONT)."""
        with self._lock:
            if self._frozen:
                os.kill(self.process.pid, signal.SIGCONT)
                self._frozen = False

    def settle(self, timeout: float = 15) -> None:
        """Wait until the emulator has answered every request it received (the late writes landed)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while any(link.pending and not link.closed for link in self._links):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{self.name}: requests still unanswered after {timeout}s")
                self._changed.wait(remaining)
            self._links = [link for link in self._links if not link.closed]

    def close(self) -> None:
        self.resume()
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()


@dataclass
class FaultStack:
    """Emulators of one test behind fault proxies: ``cosmos`` and ``blob`` (:class:`FaultProxy`)."""

    emulators: Emulators
    cosmos: FaultProxy
    blob: FaultProxy

    def settings(self) -> dict[str, str]:
        """App settings pointing at the proxies, with the short storage timeout."""
        return {
            **self.emulators.settings(),
            "STORAGE": azurite_connection_string(self.blob.port),
            "COSMOS_ENDPOINT": f"http://127.0.0.1:{self.cosmos.port}/",
            "STORAGE_TIMEOUT_SECONDS": str(FAULT_TIMEOUT_SECONDS),
        }


@contextlib.contextmanager
def fault_stack(workdir) -> Iterator[FaultStack]:
    """Start private emulators with a :class:`FaultProxy` in front of each; stop all on exit."""
    with running_emulators(workdir) as emulators:
        blob_process, cosmos_process = emulators.processes
        stack = FaultStack(emulators, FaultProxy("cosmos", emulators.cosmos_port, cosmos_process),
                           FaultProxy("blob", emulators.blob_port, blob_process))
        try:
            yield stack
        finally:
            stack.cosmos.close()
            stack.blob.close()
