"""Whether a ranking's best SOP is a match a suggestion may rest on, or the ticket matches no SOP.

One function, used by the pipeline and by the guard's classifier, so that "is this a match" is
decided in one place from the retriever's own signals: the calibrated match probability of the
best hit (`retriever.calibration`; dense similarity where no calibration exists for the encoder),
against the `match_threshold` setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sopilot.retriever.hybrid import Hit


def best_match(hits: Sequence[Hit], threshold: float) -> Hit | None:
    """The best hit when its match probability reaches `threshold`, else None (no SOP matched)."""
    best = hits[0] if hits else None
    return best if best is not None and best.match_probability >= threshold else None
