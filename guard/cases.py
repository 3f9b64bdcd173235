"""Labelled guard cases (docs/interface.md §4): what an `expect` block may say and how a result is compared with it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopilot.guard.result import GuardResult

EXPECT_KEYS = frozenset({"outcome", "policy", "verdict", "violations"})


def compare(expect: Mapping[str, Any], result: GuardResult) -> list[str]:
    """Every way `result` disagrees with `expect` (empty when it agrees).

    `outcome` may be one string or a list of acceptable ones; `violations` lists codes that must be
    present (others may be too); `policy` and `verdict` must be equal.
    """
    d, v = result.decision, result.verdict
    problems = []
    if "outcome" in expect:
        allowed = expect["outcome"] if isinstance(expect["outcome"], list) else [expect["outcome"]]
        if d.outcome not in allowed:
            problems.append(f"outcome {d.outcome!r}, expected {' or '.join(map(repr, allowed))}")
    if "policy" in expect and d.policy != expect["policy"]:
        problems.append(f"policy {d.policy!r}, expected {expect['policy']!r}")
    if "verdict" in expect and v.verdict != expect["verdict"]:
        problems.append(f"verdict {v.verdict!r}, expected {expect['verdict']!r}")
    codes = {violation.code for violation in v.violations}
    missing = [code for code in expect.get("violations") or () if code not in codes]
    if missing:
        problems.append(f"violations {sorted(codes)} lack {missing}")
    return problems
