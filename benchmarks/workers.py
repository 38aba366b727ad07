"""Benchmark subprocesses driven line by line: one request line on stdin, one JSON line back.

A worker prints ``ready`` once set up; :class:`LineWorker` waits for it, then :meth:`ask` sends a
line and returns the parsed answer. Separate processes, so the parent can measure each one's RSS
alone (``psutil.Process`` in :attr:`LineWorker.process`).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import psutil

from benchmarks.stack import ROOT


class LineWorker:
    """``python -m <module> <args>`` with pipes; raises ``RuntimeError`` if it does not say ``ready``."""

    def __init__(self, module: str, *args: str) -> None:
        self.popen = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self.popen.stdout.readline().strip()  # type: ignore[union-attr]
        if ready != "ready":
            self.close()
            raise RuntimeError(f"{module} did not start (said {ready!r})")
        self.process = psutil.Process(self.popen.pid)

    def ask(self, line: str) -> dict[str, Any]:
        self.popen.stdin.write(line + "\n")  # type: ignore[union-attr]
        self.popen.stdin.flush()  # type: ignore[union-attr]
        answer = self.popen.stdout.readline()  # type: ignore[union-attr]
        if not answer:
            raise RuntimeError("worker exited during a request")
        return json.loads(answer)

    def close(self) -> None:
        if self.popen.stdin:
            self.popen.stdin.close()
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
