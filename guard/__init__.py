"""The deterministic guard: policy decisions from ticket facts, and checks on every draft reply.

The LLM never decides a refund, an escalation or an approval. `decide` applies the handbook's rules
(data in `knowledge/policies.yaml`) to a ticket's typed facts; `check` holds a draft reply to what
the decision allows; `compose_reply` builds the compliant reply shown instead of a blocked draft.
Importing this package stays light: no torch, chromadb, langchain or numpy.
"""

from sopilot.guard.check import Verdict, Violation, check
from sopilot.guard.decide import Allowance, Decision, Remuneration, decide, is_stopped
from sopilot.guard.facts import Ticket, parse_ticket
from sopilot.guard.policy import Policies, load_policies
from sopilot.guard.reply import compose_reply
from sopilot.guard.result import GuardResult, guard_ticket

__all__ = [
    "Allowance", "Decision", "GuardResult", "Policies", "Remuneration", "Ticket", "Verdict", "Violation", "check",
    "compose_reply", "decide", "guard_ticket", "is_stopped", "load_policies", "parse_ticket",
]
