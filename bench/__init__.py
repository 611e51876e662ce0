"""The mxgate benchmark harness: ``python -m bench`` (or ``make bench``).

Measures direct-to-sink, mxgate and Haraka one after another in the same run,
with smtp-sink as the counted upstream. Nothing here is imported by the gateway.
"""

import sys
from pathlib import Path

# The peers (smtp-sink, the private Postfix) are the test suite's: one implementation in
# tests/mtapeers. Appended, never prepended, so nothing installed is shadowed.
_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
