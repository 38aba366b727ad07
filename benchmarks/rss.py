"""Peak resident set size (RSS) of another process while something runs.

:class:`RssPeak` samples ``psutil.Process.memory_info().rss`` every :data:`INTERVAL_SECONDS` in a
background thread between ``__enter__`` and ``__exit__``; ``baseline`` is the RSS just before,
``peak`` the largest sample. On Linux it also resets the kernel's high-water mark first
(``/proc/<pid>/clear_refs`` ← ``5``) and reads ``VmHWM`` afterwards, which catches spikes shorter
than the sampling interval; ``kernel_peak`` is ``None`` where that is not available.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

INTERVAL_SECONDS = 0.002


class RssPeak:
    """Context manager: ``with RssPeak(process) as peak: ...`` then read ``peak.delta`` etc. (bytes)."""

    def __init__(self, process: psutil.Process, interval: float = INTERVAL_SECONDS) -> None:
        self.process = process
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self.kernel_peak: int | None = None
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._hwm_reset = False

    @property
    def delta(self) -> int:
        """Peak minus baseline (the better of the sampled and the kernel peak)."""
        return self.best_peak - self.baseline

    @property
    def best_peak(self) -> int:
        return max(self.peak, self.kernel_peak or 0)

    def __enter__(self) -> "RssPeak":
        self._hwm_reset = _reset_hwm(self.process.pid)
        self.baseline = self.peak = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self._hwm_reset:
            self.kernel_peak = _read_hwm(self.process.pid)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        try:
            rss = self.process.memory_info().rss
        except psutil.Error:
            return
        self.samples += 1
        if rss > self.peak:
            self.peak = rss


def _reset_hwm(pid: int) -> bool:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _read_hwm(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
