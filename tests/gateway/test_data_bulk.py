"""The bulk DATA reader agrees with the line-by-line rules on every input (<5 s).

``read_data`` reads the section in large chunks and checks it in a few passes;
``judge_lines`` is the rules applied one line at a time. Hypothesis feeds both
adversarial sections (dots, bare CR/LF, long lines, sizes near the limit) split
across the stream at random points, with tiny and large reader limits.
"""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mxgate_gateway.config.model import BareLineEndings
from mxgate_gateway.smtp.data import DataResult, DataStatus, judge_lines, read_data

PIECES = st.sampled_from(
    [b"a", b"xyz", b".", b"..", b"\r\n", b"\r", b"\n", b"\r\n.", b" ", b"x" * 500, b"\x00"]
)
LINES = st.lists(st.lists(PIECES, max_size=6).map(b"".join), max_size=12)


def section_of(lines: list[bytes]) -> bytes:
    """CRLF-terminated lines; a lone '.' line would end DATA early, so it is stuffed."""
    section = b"".join(line + b"\r\n" for line in lines)
    while b"\r\n.\r\n" in section:
        section = section.replace(b"\r\n.\r\n", b"\r\n..\r\n")
    return b"." + section if section.startswith(b".\r\n") else section


async def feed_and_read(
    wire: bytes, cuts: list[int], limit: int, max_size: int, bare: BareLineEndings
) -> tuple[DataResult, bytes]:
    reader = asyncio.StreamReader(limit=limit)
    task = asyncio.create_task(read_data(reader, max_size, bare))
    last = 0
    for cut in [*sorted(set(cuts)), len(wire)]:
        reader.feed_data(wire[last:cut])
        last = cut
        await asyncio.sleep(0)
    reader.feed_eof()
    result = await task
    return result, await reader.read()


@settings(max_examples=300, deadline=None)
@given(
    lines=LINES,
    cuts=st.lists(st.integers(min_value=0, max_value=8000), max_size=6),
    limit=st.sampled_from([8, 1001, 65536]),
    max_size=st.sampled_from([5, 600, 1200, 100_000]),
    bare=st.sampled_from(list(BareLineEndings)),
)
async def test_bulk_reading_matches_the_line_by_line_rules(
    lines: list[bytes], cuts: list[int], limit: int, max_size: int, bare: BareLineEndings
) -> None:
    """Same status and bytes as the per-line rules, and the stream stops right after the dot."""
    section = section_of(lines)
    wire = section + b".\r\nNEXT\r\n"
    expected = judge_lines(section, max_size, bare)
    got, rest = await feed_and_read(wire, [c for c in cuts if c < len(wire)], limit, max_size, bare)
    assert rest == b"NEXT\r\n"
    if expected.status is DataStatus.OK:
        assert got == expected
    elif 2 * (len(section) + 3) > 3 * max_size + 3:
        # Past 1.5 x the limit the reader stops keeping bytes: an earlier violation wins,
        # else the section is too big (it cannot fit, whatever comes after).
        assert got.status in (expected.status, DataStatus.TOO_BIG)
        assert got.content == b""
    else:
        assert got == expected


@pytest.mark.parametrize(
    ("wire", "content"),
    [
        (b".\r\nNEXT\r\n", b""),
        (b"a\r\n.\r\nNEXT\r\n", b"a\r\n"),
        (b"..\r\n.\r\nNEXT\r\n", b".\r\n"),
        (b"a.\r\nb\r\n.\r\nNEXT\r\n", b"a.\r\nb\r\n"),
        (b"a\r\n..\r\n...\r\n.\r\nNEXT\r\n", b"a\r\n.\r\n..\r\n"),
    ],
    ids=["empty", "one-line", "stuffed-dot-line", "line-ending-in-dot", "stuffed-lines"],
)
@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
async def test_the_end_of_data_is_found_across_read_boundaries(
    wire: bytes, content: bytes, split: int
) -> None:
    """<CRLF>.<CRLF> is recognised wherever the network splits it, even as the first line."""
    result, rest = await feed_and_read(wire, [split], 1001, 1000, BareLineEndings.REJECT)
    assert (result.status, result.content, rest) == (DataStatus.OK, content, b"NEXT\r\n")
