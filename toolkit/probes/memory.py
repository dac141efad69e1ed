"""PeakMemory: the peak memory of a stretch of work, and memory sizes as users write them.

What is measured depends on where the model runs, and each source has its limits:

- **GPU / TPU**: `tf.config.experimental.get_memory_info(device)["peak"]` after
  `reset_memory_stats(device)`, the largest over the visible accelerators (one device running out
  is enough to fail). These are the bytes TensorFlow's allocator handed out (weights, optimizer
  slots, activations, workspace), not the pool it reserved: `nvidia-smi` shows the pool, which
  TensorFlow grows up to nearly the whole card.
- **CPU on Linux**: the process's peak resident set, `VmHWM` of `/proc/self/status`, reset to the
  current resident set by writing `5` to `/proc/self/clear_refs` (Linux 4.0+). It counts
  everything the process holds: the TensorFlow runtime (~0.6 GB), the dataset, `tf.data`
  prefetch buffers, Python. Memory freed by the allocator but not returned to the system still
  counts, so a measurement can include a previous, larger one's leftovers; measuring from small to
  large work (as the batch-size finder does) avoids that.
- **CPU elsewhere**: `resource.getrusage(...).ru_maxrss`, the peak of the whole process life,
  never reset (`resettable` is `False`).

Example:

>>> meter = PeakMemory.detect()
>>> meter.reset()
>>> meter.peak_bytes() > 0
True
>>> parse_memory_size("1.5GiB"), format_bytes(3 * 2**20)
(1610612736, '3.0 MiB')
"""

import dataclasses
import re
import sys
from typing import Tuple

import tensorflow as tf

from toolkit.errors import RecipeError

__all__ = ["PeakMemory", "format_bytes", "parse_memory_size"]

_STATUS, _CLEAR_REFS = "/proc/self/status", "/proc/self/clear_refs"
# `docker --memory` and `ulimit` read k/m/g as powers of 1024; "KB/MB/GB" follow SI.
_UNITS = {"": 1, "b": 1, "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30,
          "gib": 2**30, "t": 2**40, "tib": 2**40, "kb": 10**3, "mb": 10**6, "gb": 10**9,
          "tb": 10**12}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")


@dataclasses.dataclass(frozen=True)
class PeakMemory:
    """Measures the peak memory between `reset()` and `peak_bytes()` (see the module doc).

    Args:
        devices: Accelerator names (`"GPU:0"`, ...) whose allocator is read; empty for process
            memory.
        source: One line naming what is measured, for reports.
        resettable: Whether `reset()` starts a new peak; `False` where only the peak of the
            whole process life is known.

    Example:

    >>> meter = PeakMemory.detect()
    >>> meter.reset()
    >>> isinstance(meter.source, str), meter.peak_bytes() > 0
    (True, True)
    """

    devices: Tuple[str, ...]
    source: str
    resettable: bool

    @classmethod
    def detect(cls) -> "PeakMemory":
        """The meter for this process: accelerators if TensorFlow sees any, else the process.

        Returns:
            A `PeakMemory`.
        """
        for kind in ("GPU", "TPU"):
            devices = tuple(device.name.split("device:")[-1]
                            for device in tf.config.list_logical_devices(kind))
            if devices:
                return cls(devices, f"peak bytes allocated by TensorFlow on {', '.join(devices)} "
                                    f"(tf.config.experimental.get_memory_info)", True)
        if _can_reset_process_peak():
            return cls((), "peak resident memory of the whole process (VmHWM of "
                           "/proc/self/status, reset before each measurement)", True)
        return cls((), "peak resident memory of the whole process since it started "
                       "(getrusage ru_maxrss; cannot be reset on this system)", False)

    def reset(self) -> None:
        """Starts a new peak (a no-op when `resettable` is `False`)."""
        for device in self.devices:
            tf.config.experimental.reset_memory_stats(device)
        if not self.devices and self.resettable:
            _reset_process_peak()

    def peak_bytes(self) -> int:
        """The peak since the last `reset()`, in bytes (the largest over `devices`)."""
        if self.devices:
            return max(int(tf.config.experimental.get_memory_info(device)["peak"])
                       for device in self.devices)
        if self.resettable:
            return _status_bytes("VmHWM")
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024  # macOS: bytes.


def _status_bytes(field: str) -> int:
    with open(_STATUS) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # The kernel writes kB.
    raise OSError(f"{_STATUS} has no {field} line")


def _reset_process_peak() -> None:
    with open(_CLEAR_REFS, "w") as clear_refs:
        clear_refs.write("5")


def _can_reset_process_peak() -> bool:
    try:
        _reset_process_peak()
        _status_bytes("VmHWM")
    except OSError:  # Not Linux, an old kernel, or /proc not writable in this sandbox.
        return False
    return True


def parse_memory_size(text: str) -> int:
    """Reads a memory size such as `"12GiB"`, `"500MB"`, `"1.5G"` or `"1048576"` as bytes.

    `K`, `M`, `G`, `T` and `KiB`... `TiB` are powers of 1024 (as `docker --memory`); `KB`, `MB`,
    `GB`, `TB` are powers of 1000. Case does not matter.

    Args:
        text: The size.

    Returns:
        The size in bytes.

    Raises:
        RecipeError: If `text` is not a positive size with a known unit.

    Example:

    >>> parse_memory_size("2g"), parse_memory_size("500MB")
    (2147483648, 500000000)
    """
    match = _SIZE.match(str(text))
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS or float(match.group(1)) * _UNITS[unit] < 1:
        raise RecipeError(
            f"Cannot read the memory size {text!r}. Write a positive number with an optional "
            f"unit: B, K/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) or KB, MB, GB, TB (powers "
            f"of 1000), e.g. --max-memory 12GiB."
        )
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(num_bytes: float) -> str:
    """Writes a byte count with a binary unit and 2-3 significant digits.

    Example:

    >>> format_bytes(512), format_bytes(1536 * 2**20)
    ('512 B', '1.5 GiB')
    """
    value, unit = float(num_bytes), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" or value >= 100 else f"{value:.1f} {unit}"
