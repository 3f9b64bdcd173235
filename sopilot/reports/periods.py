"""Report periods: ISO weeks (`2026-W48`, Monday 00:00 UTC to the next Monday) and runs of weeks."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sopilot.core.errors import InputError


@dataclasses.dataclass(frozen=True, kw_only=True)
class Period:
    """A half-open span of time `[start, end)` in UTC, with the label reports print."""

    start: dt.datetime
    end: dt.datetime
    label: str

    def __contains__(self, moment: dt.datetime) -> bool:
        """Whether `moment` (naive means UTC) falls inside the period."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        return self.start <= moment < self.end

    def to_json(self) -> dict[str, str]:
        """Label, start and end (ISO 8601)."""
        return {"label": self.label, "start": self.start.isoformat(), "end": self.end.isoformat()}


def _monday(day: dt.date) -> dt.datetime:
    start = day - dt.timedelta(days=day.weekday())
    return dt.datetime(start.year, start.month, start.day, tzinfo=dt.UTC)


def week_label(moment: dt.date | dt.datetime) -> str:
    """The ISO week of a day, e.g. `2026-W48`."""
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(label: str | None, *, now: dt.datetime | None = None) -> Period:
    """The ISO week `label` (`2026-W48`); None means the current week (UTC).

    Raises:
        InputError: `label` is not an ISO week.
    """
    if label is None:
        return week_of((now or dt.datetime.now(dt.UTC)).date())
    try:
        day = dt.date.fromisoformat(f"{label.strip()}-1")
        if week_label(day) != label.strip():
            raise ValueError(label)
    except ValueError:
        raise InputError(f"week {label!r} is not an ISO week: write it as YYYY-Www, e.g. 2026-W48") from None
    return week_of(day)


def week_of(day: dt.date) -> Period:
    """The ISO week holding `day`."""
    start = _monday(day)
    return Period(start=start, end=start + dt.timedelta(days=7), label=week_label(day))


def weeks_until(until: str | None, weeks: int, *, now: dt.datetime | None = None) -> Period:
    """`weeks` ISO weeks ending with the week `until` (None: the current week), e.g. `2026-W44..2026-W48`.

    Raises:
        InputError: `weeks` is below 1 or `until` is not an ISO week.
    """
    if weeks < 1:
        raise InputError(f"weeks must be at least 1. Currently, weeks is {weeks}")
    last = parse_week(until, now=now)
    start = last.start - dt.timedelta(days=7 * (weeks - 1))
    label = last.label if weeks == 1 else f"{week_label(start.date())}..{last.label}"
    return Period(start=start, end=last.end, label=label)


def previous_week(now: dt.datetime | None = None) -> Period:
    """The ISO week before the current one: what a Monday-morning run reports on."""
    current = parse_week(None, now=now)
    return week_of((current.start - dt.timedelta(days=1)).date())
