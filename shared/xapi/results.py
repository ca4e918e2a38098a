"""Statement result: score, success, completion, response, duration."""

from __future__ import annotations

from pydantic import model_validator

from shared.xapi.primitives import Duration, Extensions, XapiModel, violation

__all__ = ["Result", "Score"]


class Score(XapiModel):
    """``scaled`` in [-1, 1]; ``min`` < ``max``; ``min`` <= ``raw`` <= ``max``."""

    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ranges(self) -> Score:
        if self.scaled is not None and not -1.0 <= self.scaled <= 1.0:
            raise violation("score.range", "score.scaled must be between -1 and 1", "scaled")
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise violation("score.range", "score.min must be less than score.max", "min")
        if self.raw is not None:
            if self.min is not None and self.raw < self.min:
                raise violation("score.range", "score.raw must not be less than score.min", "raw")
            if self.max is not None and self.raw > self.max:
                raise violation(
                    "score.range", "score.raw must not be greater than score.max", "raw"
                )
        return self


class Result(XapiModel):
    """A measured outcome related to the Statement."""

    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    response: str | None = None
    duration: Duration | None = None
    extensions: Extensions | None = None
