"""One timer for every forgetting method: wall clock of the forget call alone, and peak memory.

The model is already loaded and evaluation is not inside the timed call. On CUDA the device is
synchronised before the clock starts and before it stops, and the peak is
``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (tensors only, not the
allocator's cache). On a CPU there is no resettable high-water mark (``ru_maxrss`` only ever
grows over the process's life), so a background thread samples the resident set size every
``interval`` seconds and keeps the maximum; a spike shorter than the interval can be missed, and
the peak includes everything else the process holds (the data set, the original model), so the
record also gives the RSS at the start and the growth over it.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")

#: Seconds between RSS samples on a CPU.
SAMPLE_INTERVAL = 0.005


def _rss_bytes() -> int:
    """Resident set size now (Linux /proc), else the process's high-water mark (never resets)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        scale = 1 if os.uname().sysname == "Darwin" else 1024  # bytes on macOS, KiB on Linux
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class _RssSampler(threading.Thread):
    def __init__(self, interval: float):
        super().__init__(daemon=True)
        self.interval = interval
        self.start_rss = _rss_bytes()
        self.peak = self.start_rss
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop_event.wait(self.interval)

    def finish(self) -> None:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, _rss_bytes())


def timed(fn: Callable[[], T], device: torch.device | str,
          interval: float = SAMPLE_INTERVAL) -> tuple[T, dict]:
    """Run ``fn()`` and return ``(its result, measurement)``.

    The measurement has ``seconds`` (wall clock), ``device`` (e.g. ``"cuda:0"``, ``"cpu"``),
    ``peak_memory_bytes`` and ``memory_kind``: ``"cuda_max_allocated"`` (peak bytes of tensors on
    the GPU during the call) or ``"cpu_rss_sampled"`` (peak resident set size of the process,
    sampled; ``rss_start_bytes`` and ``rss_growth_bytes`` beside it).
    """
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        began = time.perf_counter()
        result = fn()
        torch.cuda.synchronize(device)
        seconds = time.perf_counter() - began
        name = f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"
        return result, {"seconds": seconds, "device": name,
                        "device_name": torch.cuda.get_device_name(device),
                        "peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)),
                        "memory_kind": "cuda_max_allocated"}
    sampler = _RssSampler(interval)
    sampler.start()
    began = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - began
        sampler.finish()
    return result, {"seconds": seconds, "device": str(device),
                    "peak_memory_bytes": int(sampler.peak), "memory_kind": "cpu_rss_sampled",
                    "rss_start_bytes": int(sampler.start_rss),
                    "rss_growth_bytes": int(sampler.peak - sampler.start_rss)}
