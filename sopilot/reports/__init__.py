"""The handbook's governance reports, read from the audit log.

- L.1, the weekly Automation Policy Exception Report: `overrides.override_report`;
- L.2, knowledge-base gaps: `gaps.gap_report`;
- §6, the policy review report: `review.policy_review`; a proposed change tried first: `trial.try_change`;
- §8, CSAT per ticket: `csat.record_csat` (the service) and `csat.import_csv`;
- the Monday 09:00 run: `schedule.weekly_run` and `schedule.schedule(scheduler, settings)`;
- a seeded, realistic history with planted patterns: `demo.write_demo`.

Findings that become work (tasks, notifications, private flags) are audit events (`tasks`).
Importing this package stays light: numpy, scikit-learn and the encoder load when a report groups text.
"""
