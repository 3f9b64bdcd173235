"""The Monday 09:00 run of handbook L.1 and L.2 ("Report generated every Monday 9 AM"; "Weekly analysis").

`weekly_run` reports on the ISO week that just ended: the Automation Policy Exception Report
(L.1) and the knowledge-base gaps of the quarter up to that week (L.2), recording every task,
notification and private flag they raise (once each: a rerun raises nothing twice).
`schedule(scheduler, settings)` adds it to an APScheduler scheduler (the service's), with a cron
trigger for Mondays 09:00 in `timezone` (default UTC). Without the service, a cron line does the
same: `0 9 * * 1  cd /srv/sopilot && .venv/bin/sopilot report weekly --json >> data/weekly.jsonl`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

JOB_ID = "sopilot-weekly-reports"


@dataclasses.dataclass(frozen=True, kw_only=True)
class WeeklyRun:
    """The two weekly reports, with their tasks recorded."""

    overrides: Any
    gaps: Any

    def to_json(self) -> dict[str, Any]:
        """`{"overrides": <L.1 report>, "gaps": <L.2 report>}`."""
        return {"overrides": self.overrides.to_json(), "gaps": self.gaps.to_json()}

    def to_markdown(self) -> str:
        """Both reports, one after the other."""
        return self.overrides.to_markdown() + "\n" + self.gaps.to_markdown()


def weekly_run(settings, *, now: dt.datetime | None = None) -> WeeklyRun:
    """Report on the week before `now` (default: now, UTC) and record what the reports raise."""
    from sopilot.reports.gaps import DEFAULT_WEEKS, gap_report
    from sopilot.reports.overrides import override_report
    from sopilot.reports.periods import previous_week

    week = previous_week(now).label
    return WeeklyRun(overrides=override_report(settings, week, record=True),
                     gaps=gap_report(settings, weeks=DEFAULT_WEEKS, until=week, record=True))


def schedule(scheduler, settings, *, timezone: str = "UTC"):
    """Add the Monday 09:00 run to an APScheduler scheduler (3.x `add_job` API); return the job.

    The job replaces an earlier one of the same id, runs at most once at a time, and a run missed
    by less than an hour (the service was restarting) still happens.
    """
    return scheduler.add_job(weekly_run, trigger="cron", day_of_week="mon", hour=9, minute=0, timezone=timezone,
                             args=[settings], id=JOB_ID, name="handbook L.1/L.2 weekly reports",
                             replace_existing=True, max_instances=1, coalesce=True, misfire_grace_time=3600)
