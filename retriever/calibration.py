"""A calibrated match probability: is this SOP one the ticket may rest on?

The retriever's own signals are combined by a logistic regression fitted on labelled queries
and tickets, no-match tickets included (`python -m sopilot.eval.calibrate`, which reports the
out-of-fold AUC). For the SOP at each rank the signals are: its dense similarity, the best dense
similarity of any SOP, its BM25 score (log), its fused score and its margin over the next SOP,
its distance from the top, whether the dense and lexical rankings agree on it, and whether the
ticket was read in English (the encoders are English; a ticket in another language scores lower
even when an SOP covers it), and the share of the ticket's words the knowledge base and the SOP use.
Where the learned ranker orders the SOPs (`retriever.rank`), its score and its margin over the
next SOP are weighed too (`RANK_SIGNALS`).

The coefficients are data (`calibration.json` beside this module), one entry per encoder, because
similarities of different encoders live on different scales; an encoder without an entry gets no
calibrated probability (its dense similarity stands in, and says so by `calibrated = False`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sopilot.retriever.linear import LinearEntry, problems, standardised_sum

from sopilot.core.errors import ConfigError

DEFAULT_FILE = Path(__file__).with_name("calibration.json")
FEATURES: tuple[str, ...] = ("dense", "dense_top", "lexical_log", "fused", "margin", "gap_to_top", "dense_first",
                             "lexical_first", "agree", "english", "coverage", "sop_coverage")
RANK_SIGNALS: tuple[str, ...] = ("rank_score", "rank_margin")
"""The learned ranker's score of the SOP and its margin over the next (`retriever.rank`); a calibration
fitted where a ranker exists weighs them after `FEATURES`."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Signals:
    """The features of the SOPs at the first ranks of one search."""

    rows: tuple[tuple[float, ...], ...]
    """One row per rank (best first), in the order of `FEATURES`."""
    ranked: tuple[tuple[float, ...], ...] = ()
    """One row per rank of `RANK_SIGNALS`."""

    @classmethod
    def of(cls, *, order: Sequence[str], fused: Mapping[str, float], dense: Mapping[str, float],
           lexical: Mapping[str, float], total_weight: float, english: bool, coverage: float = 0.0,
           sop_coverage: Mapping[str, float] | None = None, rank_scores: Mapping[str, float] | None = None,
           depth: int = 10) -> Signals:
        """Features of the first `depth` SOPs of a ranking (the fusion's, or the learned ranker's).

        `coverage` is the share of the query's words the knowledge base uses at all, `sop_coverage`
        the share each SOP uses: a ticket about the weather shares almost no words with any SOP.
        `rank_scores` are the learned ranker's scores of the SOPs it re-ordered; without a ranker
        the fused score stands in, so `rank_score` and `rank_margin` are those of the ranking used.
        """
        sop_coverage = sop_coverage or {}
        total = total_weight or 1.0
        dense_first = max(dense, key=lambda s: (dense[s], s)) if dense else None
        lexical_first = max(lexical, key=lambda s: (lexical[s], s)) if lexical else None
        top = fused[order[0]] if order else 0.0
        if rank_scores:
            floor = min(rank_scores.values())
            ranked = [rank_scores.get(s, floor) for s in order[:depth + 1]]
        else:
            ranked = [fused[s] / total for s in order[:depth + 1]]
        rows, rank_rows = [], []
        for rank, sop in enumerate(order[:depth]):
            following = fused[order[rank + 1]] if rank + 1 < len(order) else 0.0
            after = ranked[rank + 1] if rank + 1 < len(ranked) else ranked[rank]
            rows.append((dense.get(sop, 0.0), max(dense.values(), default=0.0), math.log1p(lexical.get(sop, 0.0)),
                         fused[sop] / total, (fused[sop] - following) / total, (top - fused[sop]) / total,
                         float(sop == dense_first), float(sop == lexical_first),
                         float(sop == dense_first and sop == lexical_first), float(english), coverage,
                         sop_coverage.get(sop, 0.0)))
            rank_rows.append((ranked[rank], ranked[rank] - after))
        return cls(rows=tuple(rows), ranked=tuple(rank_rows))

    def row(self, rank: int) -> tuple[float, ...]:
        """`FEATURES` then `RANK_SIGNALS` of the SOP at `rank` (0 = best)."""
        return self.rows[rank] + (self.ranked[rank] if rank < len(self.ranked) else (0.0,) * len(RANK_SIGNALS))


class _Entry(LinearEntry):
    intercept: float
    oof_auc: float = Field(ge=0, le=1)
    """Out-of-fold AUC of the top hit's probability: answerable tickets against no-match ones."""
    suggested_threshold: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _features(self) -> _Entry:
        if self.features not in (list(FEATURES), list(FEATURES + RANK_SIGNALS)):
            raise ValueError(f"features must be {list(FEATURES)}, optionally followed by {list(RANK_SIGNALS)}, "
                             f"not {self.features}")
        return self


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, _Entry]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Calibration:
    """The fitted logistic regression of one encoder."""

    model: str
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    oof_auc: float
    suggested_threshold: float
    calibrated: bool = True
    features: tuple[str, ...] = FEATURES
    """The signals the coefficients weigh: `FEATURES`, and `RANK_SIGNALS` when fitted on a learned ranker."""

    def probability(self, row: Sequence[float]) -> float:
        """P(match) for one row of `FEATURES` (followed by `RANK_SIGNALS` when the calibration weighs them)."""
        z = self.intercept + standardised_sum(self.coef, self.mean, self.scale, row[:len(self.coef)])
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def probabilities(self, signals: Signals, k: int) -> list[float]:
        """P(match) of the SOPs at the first `k` ranks."""
        if not self.calibrated:
            return [max(0.0, min(1.0, row[0])) for row in signals.rows[:k]]
        return [self.probability(signals.row(rank)) for rank in range(min(k, len(signals.rows)))]


UNCALIBRATED = Calibration(model="", mean=(), scale=(), coef=(), intercept=0.0, oof_auc=0.0,
                           suggested_threshold=0.5, calibrated=False, features=())


@functools.lru_cache(maxsize=8)
def _read(path: Path) -> _File:
    try:
        return _File.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"cannot read the match calibration {path}: {exc.strerror}") from None
    except ValidationError as exc:
        raise ConfigError(f"{path} is not a valid match calibration ({problems(exc)}): refit it with "
                          "`python -m sopilot.eval.calibrate`.") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not a valid match calibration (not JSON: {exc}): refit it with "
                          "`python -m sopilot.eval.calibrate`.") from None


def load_calibration(model: str, path: Path | str | None = None) -> Calibration:
    """The calibration fitted for `model`, or `UNCALIBRATED` (dense similarity) when there is none."""
    path = Path(path) if path else DEFAULT_FILE
    if not path.is_file():
        return UNCALIBRATED
    entry = _read(path).models.get(model)
    if entry is None:
        return UNCALIBRATED
    return Calibration(model=model, mean=tuple(entry.mean), scale=tuple(entry.scale), coef=tuple(entry.coef),
                       intercept=entry.intercept, oof_auc=entry.oof_auc,
                       suggested_threshold=entry.suggested_threshold, features=tuple(entry.features))
