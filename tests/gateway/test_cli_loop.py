"""The event loop is chosen by MXGATE_UVLOOP: uvloop unless turned off, when installed (<1 s)."""

from __future__ import annotations

import pytest

from mxgate_gateway.cli import _loop_factory

uvloop = pytest.importorskip("uvloop")


@pytest.mark.parametrize(
    ("value", "uses_uvloop"),
    [(None, True), ("", True), ("0", False), ("no", False), ("1", True), ("true", True)],
)
def test_uvloop_is_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str | None, uses_uvloop: bool
) -> None:
    """0/no/false/off: asyncio's own loop; unset or anything else: uvloop's (issue 13.5)."""
    if value is None:
        monkeypatch.delenv("MXGATE_UVLOOP", raising=False)
    else:
        monkeypatch.setenv("MXGATE_UVLOOP", value)
    factory = _loop_factory()
    assert (factory is uvloop.new_event_loop) is uses_uvloop
    if factory is not None:
        loop = factory()
        try:
            assert isinstance(loop, uvloop.Loop)
        finally:
            loop.close()
