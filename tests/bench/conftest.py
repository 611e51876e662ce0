"""Make the repository's ``bench`` package importable for its smoke test.

Appended (not prepended) to ``sys.path`` so it can never shadow an installed module.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.append(ROOT)
