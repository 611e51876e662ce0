"""The event loop is chosen by MXGATE_UVLOOP: uvloop only when asked and installed (<1 s)."""

from __future__ import annotations

import pytest

from mxgate_gateway.cli import _loop_factory

uvloop = pytest.importorskip("uvloop")


@pytest.mark.parametrize(
    ("value", "uses_uvloop"),
    [(None, False), ("", False), ("0", False), ("no", False), ("1", True), ("true", True)],
)
def test_uvloop_is_opt_in(
    monkeypatch: pytest.MonkeyPatch, value: str | None, uses_uvloop: bool
) -> None:
    """Unset or falsy: asyncio's own loop; 1/true/yes: uvloop's."""
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
