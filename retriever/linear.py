"""The standardised linear model both fitted files hold: the match calibration and the learned ranker.

`python -m sopilot.eval.calibrate` writes each as data, one entry per encoder: the features it weighs,
their mean and scale on the fitting set, and one coefficient each. The shape checks and the score are
here once, so the two files cannot drift apart in what "valid" means.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class LinearEntry(BaseModel):
    """One encoder's fitted coefficients over standardised features (validated when the file is read)."""

    model_config = ConfigDict(extra="forbid")

    features: list[str] = Field(min_length=1)
    mean: list[float]
    scale: list[float]
    coef: list[float]
    fitted_on: list[str] = Field(min_length=1)
    examples: int = Field(gt=0)

    @model_validator(mode="after")
    def _lengths(self) -> LinearEntry:
        if not len(self.mean) == len(self.scale) == len(self.coef) == len(self.features):
            raise ValueError(f"mean, scale and coef must each hold {len(self.features)} numbers")
        if any(s <= 0 for s in self.scale) or not all(math.isfinite(v) for v in (*self.mean, *self.coef)):
            raise ValueError("every scale must be greater than 0 and every number finite")
        return self


def standardised_sum(coef: Sequence[float], mean: Sequence[float], scale: Sequence[float],
                     values: Iterable[float]) -> float:
    """Σ coef · (value − mean) / scale: the linear score of one row."""
    return sum(c * (x - m) / s for c, x, m, s in zip(coef, values, mean, scale, strict=True))


def problems(error: ValidationError) -> str:
    """A validation error as one line: where, and what is wrong."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
