"""An execution environment's memory, as Lambda's REPORT line gives it: the most its process held.

Read with psutil, the same on every OS, whenever the environment is known to be alive: at each call
to its Runtime API (it is waiting for the answer, so even a process about to exit is still there)
and while an invocation runs. On Linux's fork server path the kernel's own high-water mark
(VmHWM) is read too, so a peak freed between two readings still counts; elsewhere labkit's runtime
reports its own peak with each call:
https://docs.aws.amazon.com/lambda/latest/dg/python-logging.html
"""

from __future__ import annotations

import threading

import psutil


class MemoryGauge:
    """The most memory an environment's process has been seen to hold, in KiB."""

    def __init__(self, pid: int, kernel_peak: bool) -> None:
        self._pid = pid
        self._kernel_peak = kernel_peak
        self._lock = threading.Lock()
        self.peak_kb = 0
        try:
            self._process: psutil.Process | None = psutil.Process(pid)
        except psutil.Error:
            self._process = None

    def sample(self) -> int:
        """Read the process's resident memory now (KiB; 0 once it has gone) and keep the peak."""
        if self._process is None:
            return 0
        try:
            info = self._process.memory_info()
        except psutil.Error:
            return 0
        now = info.rss // 1024
        # Windows keeps a peak working set; Linux a high-water mark in /proc (the fork server's path only).
        peak = max(now, getattr(info, "peak_wset", 0) // 1024)
        if self._kernel_peak:
            peak = max(peak, _high_water_kb(self._pid))
        self.report(peak)
        return now

    def report(self, kb: int) -> None:
        """Count a peak the process reported itself."""
        with self._lock:
            self.peak_kb = max(self.peak_kb, kb)


def _high_water_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0
