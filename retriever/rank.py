"""A learned ranker: the SOPs the fusion puts first, re-ordered by a linear model over generic features.

The hand-weighted fusion (`retriever.fusion`) sums two normalised scores; the ranker weighs many
more signals of the same search (`retriever.rank_features`), fitted by logistic regression on
labelled queries and tickets and validated out of fold (`python -m sopilot.eval.calibrate`, which
writes both this model and the match calibration). It re-orders only the first `depth` SOPs of
the fusion, so an SOP the fusion ranks far down stays there, and the rest keep the fusion's order.

The coefficients are data (`ranker.json` beside this module), one entry per encoder, because
similarities of different encoders live on different scales. An encoder without an entry, a
missing file or an invalid one leaves the fusion to rank, and says so once (`RankerWarning`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sopilot.retriever.linear import LinearEntry, problems, standardised_sum
from sopilot.retriever.rank_features import FEATURES, Evidence, rows

DEFAULT_FILE = Path(__file__).with_name("ranker.json")
MAX_FEATURES = 20


class RankerWarning(UserWarning):
    """The learned ranker cannot be used: the fusion ranks instead."""


class _Entry(LinearEntry):
    features: list[str] = Field(min_length=1, max_length=MAX_FEATURES)
    depth: int = Field(ge=2, le=200)
    """How many SOPs of the fusion the ranker scores (and re-orders, when `reorder`)."""
    reorder: bool
    """Whether the ranker's order replaces the fusion's: true only when it beat the fusion out of fold."""
    oof: dict[str, dict[str, float]] = Field(default_factory=dict)
    """Out-of-fold metrics per labelled file, ranker and fusion (as `python -m sopilot.eval.calibrate` measured)."""

    @model_validator(mode="after")
    def _features(self) -> _Entry:
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown features {unknown}: use names of {list(FEATURES)}")
        if len(set(self.features)) != len(self.features):
            raise ValueError("a feature is named twice")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, _Entry]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Ranker:
    """The fitted linear model of one encoder: score = Σ coef · standardised feature."""

    model: str
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    depth: int
    reorder: bool = True
    """False: the fusion's order stands and the scores only inform the match probability."""

    def __post_init__(self) -> None:
        if not len(self.features) == len(self.mean) == len(self.scale) == len(self.coef):
            raise ValueError("features, mean, scale and coef must be of one length")

    @functools.cached_property
    def _columns(self) -> tuple[int, ...]:
        return tuple(FEATURES.index(f) for f in self.features)

    def score_rows(self, feature_rows: Sequence[Sequence[float]]) -> list[float]:
        """The linear score (log-odds up to a constant) of each row of `rank_features.FEATURES`."""
        columns = self._columns
        return [standardised_sum(self.coef, self.mean, self.scale, (row[i] for i in columns))
                for row in feature_rows]

    def rerank(self, evidence: Evidence, order: Sequence[str]) -> tuple[list[str], dict[str, float]]:
        """The fusion's `order` with its first `depth` SOPs re-ordered (when `reorder`); the score of each of them."""
        head = list(order[:self.depth])
        scores = dict(zip(head, self.score_rows(rows(evidence, head)), strict=True))
        if not self.reorder:
            return list(order), scores
        return sorted(head, key=lambda s: (-scores[s], s)) + list(order[self.depth:]), scores


def _read(path: Path) -> _File:
    stat = path.stat()
    return _parse(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parse(path: Path, mtime_ns: int, size: int) -> _File:
    """The validated file, cached while it is unchanged (a refit is read afresh)."""
    del mtime_ns, size
    return _File.model_validate(json.loads(path.read_text(encoding="utf-8")))


def load_ranker(model: str, path: Path | str | None = None) -> Ranker | None:
    """The ranker fitted for `model`, or None (the fusion ranks) with a `RankerWarning` saying why."""
    path = Path(path) if path else DEFAULT_FILE
    why = ""
    entry = None
    try:
        entry = _read(path).models.get(model)
        if entry is None:
            why = f"{path} holds no ranker for the encoder {model!r}"
    except OSError as exc:
        why = f"cannot read the ranker {path}: {exc.strerror}"
    except ValidationError as exc:
        why = f"{path} is not a valid ranker ({problems(exc)})"
    except ValueError as exc:
        why = f"{path} is not a valid ranker (not JSON: {exc})"
    if entry is None:
        warnings.warn(f"{why}: the hand-weighted fusion ranks instead. Fit one with "
                      "`python -m sopilot.eval.calibrate`.", RankerWarning, stacklevel=2)
        return None
    return Ranker(model=model, features=tuple(entry.features), mean=tuple(entry.mean), scale=tuple(entry.scale),
                  coef=tuple(entry.coef), depth=entry.depth, reorder=entry.reorder)
