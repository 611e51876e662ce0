"""The live configuration snapshot: one atomic reference, swapped whole.

Sessions read ``ConfigStore.current`` once when they start and keep that
snapshot; reloaders call ``swap``. This module must not read files, watch
them, or validate anything: the loader parses, the watcher decides when.
"""

from __future__ import annotations

from collections.abc import Callable

from mxgate_gateway.config.model import Config

Listener = Callable[[Config, Config], None]


class ConfigStore:
    """Holds the current validated ``Config`` and tells listeners when it changes."""

    def __init__(self, initial: Config) -> None:
        self._current = initial
        self._generation = 1
        self._listeners: list[Listener] = []

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
        for listener in tuple(self._listeners):
            listener(old, new)
        return old

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(old, new)`` after every swap; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe
