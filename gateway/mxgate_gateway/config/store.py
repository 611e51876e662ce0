"""The live configuration snapshot: one atomic reference, swapped whole.

Sessions read ``ConfigStore.current`` once when they start and keep that
snapshot; reloaders call ``swap``; nobody is called back. This module must not read files, watch
them, or validate anything: the loader parses, the watcher decides when.
"""

from __future__ import annotations

from mxgate_gateway.config.model import Config


class ConfigStore:
    """Holds the current validated ``Config``."""

    def __init__(self, initial: Config) -> None:
        self._current = initial
        self._generation = 1

    @property
    def current(self) -> Config:
        """The snapshot new sessions must use."""
        return self._current

    @property
    def generation(self) -> int:
        """Counts successful swaps, starting at 1 for the initial snapshot."""
        return self._generation

    def swap(self, new: Config) -> Config:
        """Install ``new`` as the current snapshot; return the previous one."""
        old, self._current = self._current, new
        self._generation += 1
        return old
