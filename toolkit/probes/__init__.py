"""Probes: one-off measurements that leave the model as they found them.

- `ModelSnapshot`: every model and optimizer variable, restored bit for bit after a probe.
"""

from toolkit.probes.snapshot import ModelSnapshot

__all__ = ["ModelSnapshot"]
