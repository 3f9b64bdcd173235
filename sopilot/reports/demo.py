"""A realistic, seeded audit history for tests and for the demo database the app opens.

Weeks of tickets across several policies, each decided by the real guard under the policy set in
force on its day, handled by a team of agents: most suggestions sent as is, some edited, some
marked as the wrong SOP, some overridden with free-text justifications drawn from a wide pool of
one-off exceptions; CSAT answers for most tickets. On top of that background, known patterns are
planted, and the `Planted` manifest says where, so tests can check the reports find them (and
find nothing where nothing was planted):

- a policy gap: `gap_count` A.1 overrides in `gap_week` by several agents, all one reason (a
  duplicate charge proven in the gateway logs, refunded above the limit), written in many ways;
- a near miss: fewer than ten similar B.1 overrides the same week (not a gap), and a few A.1
  gap-like overrides in other weeks (below the threshold in their own week);
- an inconsistent agent: one agent overriding C.1 five times in `gap_week` for five unrelated reasons;
- a knowledge-base gap: more than twenty resolved tickets about one subject no SOP covers (tax
  ids on invoices), answered by agents along one outline; and a smaller such subject (below twenty);
- an SOP to review: more than fifty poorly matched or wrong-SOP tickets about SMS verification
  codes, which the login SOP (B.1) answers badly.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path
from typing import Any

from sopilot.reports.periods import parse_week, week_label

AGENTS = ("amara.okafor", "ben.liu", "carla.mendes", "dmitri.volkov", "elif.yilmaz", "farah.haddad",
          "george.adams", "hana.sato", "ivan.petrov", "julia.romero", "kofi.mensah", "lena.fischer")
INCONSISTENT_AGENT = "dmitri.volkov"
CONSISTENT_AGENT = "ivan.petrov"
GAP_AGENTS = ("amara.okafor", "ben.liu", "elif.yilmaz", "hana.sato", "kofi.mensah", "lena.fischer")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Planted:
    """Where the generator planted patterns (and what stays below every threshold)."""

    planted: bool
    """False: the control history, every pattern below its threshold."""
    weeks: tuple[str, ...]
    gap_week: str
    gap_policy: str = "A.1"
    gap_count: int
    near_miss_policy: str = "B.1"
    near_miss_count: int
    inconsistent_agent: str = INCONSISTENT_AGENT
    inconsistent_policy: str = "C.1"
    inconsistent_count: int
    consistent_agent: str = CONSISTENT_AGENT
    kb_gap_count: int
    kb_small_count: int
    kb_review_policy: str = "B.1"
    kb_review_count: int
    tickets: int
    events: int

    def to_json(self) -> dict[str, Any]:
        """Every field."""
        return dataclasses.asdict(self)


def _pick(rng: random.Random, *parts: tuple[str, ...]) -> str:
    return " ".join(p for p in (rng.choice(options) for options in parts) if p).replace(" ,", ",").strip()


_HELLO = ("", "Hi,", "Hello,", "Hi team,", "Good morning,")
_BYE = ("", "Thanks.", "Thank you.", "Regards.")

# ---- customer messages per policy -------------------------------------------------------------

_MESSAGES: dict[str, tuple[tuple[str, ...], ...]] = {
    "A.1": (("I was charged twice for", "You billed me two times for", "There is a duplicate charge for",
             "My card shows two payments for"), ("invoice {inv}.", "my {month} invoice.", "the same order {inv}.",
                                                 "this month's subscription."),
            ("The amount is {amount}.", "Each charge was {amount}.", "Please refund the extra {amount}.")),
    "A.2": (("Please cancel my subscription", "I want to cancel my plan", "Cancel my account and refund me"),
            ("— I paid {days} days ago.", "; the last payment was {days} days ago.", ", renewed {days} days ago."),
            ("", "I no longer need the service.", "We moved to another tool.")),
    "B.1": (("I can't log in to my account", "My password reset is not working", "Login keeps failing"),
            ("after {attempts} attempts.", "even after resetting the password.", "since this morning."),
            ("", "Please help me get back in.", "I need access today.")),
    "C.1": (("The device I received is damaged", "My order arrived broken", "The product stopped working"),
            ("— the screen is cracked.", "— it does not power on.", "— a hinge snapped off.",
             "— there are scratches on the case."), ("", "It is still under warranty.", "Can you replace it?")),
    "I.2": (("I dispute invoice {inv}", "Can I pay invoice {inv} in instalments", "I need a payment plan for {inv}"),
            ("over {plan} months?", "because cash flow is tight this quarter.", "as the amount is higher than usual."),
            ("", "We have been customers for a while.")),
    "H.1": (("Where is my order {inv}?", "My package has not arrived", "Tracking for {inv} has not updated"),
            ("It was due last week.", "for five days.", "since it left the warehouse."), ("", "Please check.")),
}


def _facts(policy: str, rng: random.Random) -> dict[str, Any]:
    if policy == "A.1":
        return {"priority": rng.choice(("Low", "Low", "Medium", "High")),
                "amount": f"{rng.choice((19, 45, 89, 120, 149, 180, 240)):.2f}"}
    if policy == "A.2":
        return {"days_since_payment": rng.choice((3, 7, 12, 14, 20, 40))}
    if policy == "B.1":
        return {"priority": rng.choice(("Low", "Medium", "High")), "failed_login_attempts": rng.choice((0, 1, 3, 5))}
    if policy == "C.1":
        return {"priority": rng.choice(("Low", "Low", "Medium")), "under_warranty": rng.random() < 0.8,
                "damage": rng.choice(("minor", "minor", "major"))}
    if policy == "I.2":
        return {"tenure_months": rng.choice((3, 12, 30, 48)), "failed_payments": rng.choice((0, 0, 1)),
                "plan_months": rng.choice((1, 2, 3, 6))}
    return {}


def _message(policy: str, rng: random.Random, facts: dict[str, Any]) -> str:
    values = {"inv": f"INV-{rng.randint(1000, 9999)}", "month": rng.choice(("March", "October", "November")),
              "amount": f"${facts.get('amount', '60.00')}", "days": facts.get("days_since_payment", 10),
              "attempts": facts.get("failed_login_attempts", 2), "plan": facts.get("plan_months", 2)}
    return _pick(rng, _HELLO, *_MESSAGES[policy], _BYE).format(**values)


# ---- override justifications -------------------------------------------------------------------

_ONE_OFF = (
    "Customer is a long-standing enterprise account; my team lead approved a goodwill gesture.",
    "The ticket was misclassified, this is really a shipping question.",
    "Legal asked us to handle this account manually because of an open court case.",
    "The customer is moving to the annual plan today, finance agreed to settle it that way.",
    "Phone call with the customer clarified the facts recorded on the ticket were out of date.",
    "Fraud team has a hold on this account, so no automated action may run.",
    "The customer is a reseller and their partner manager takes over from here.",
    "Customer passed away; the family asked us to close everything quietly.",
    "Same issue already solved in an earlier ticket, I linked it instead.",
    "Regional regulation in Quebec requires a written notice first.",
    "Customer asked for store credit instead of money back.",
    "The warehouse confirmed the courier lost the parcel, different process applies.",
    "Accessibility needs: the customer asked for a call back instead of an email.",
    "Sales promised this at renewal and the contract addendum shows it.",
    "Our outage last Tuesday caused this, the incident manager asked for manual handling.",
    "The account belongs to a government agency with its own procurement rules.",
    "Customer is in the middle of a security review, access changes are frozen.",
    "The amount was charged in euros, conversion made the automatic rule misfire.",
    "Duplicate ticket from the same customer, merged into the first one.",
    "A journalist wrote in; communications team handles the answer.",
)
_SCATTERED = (  # one agent's five reasons for one policy, unrelated to each other
    "Felt the customer deserved it.",
    "System seemed slow today so I did it by hand.",
    "The photo looked fine to me.",
    "Customer mentioned they might post a bad review online.",
    "Not sure the warranty dates in our tool are right.",
)
_CONSISTENT = ("The customer's bank confirmed the missed payment was its own error, so the plan can go ahead.",
               "Bank letter shows the failed payment was the bank's mistake; approving the plan.",
               "The failed payment was caused by the customer's bank, confirmed in writing, plan approved.")
_GAP_OPEN = ("", "Checked with billing:", "Verified:", "Confirmed in the payment gateway:", "Per the gateway records,")
_GAP_CORE = ("the processor charged the card twice for one order",
             "the payment gateway logs show a duplicate transaction",
             "the double charge came from a gateway retry",
             "the same payment was captured twice by the processor",
             "the gateway replayed the charge, so the customer paid twice")
_GAP_TAIL = ("so I refunded the duplicate even though it is above the $150 limit.",
             "; refunded the full duplicate amount although it exceeds the auto-refund limit.",
             ", refund of the duplicate issued despite the limit.",
             "— refunded it; escalating a proven duplicate to billing only delays the customer.",
             "so the duplicate was refunded above the threshold.")
_NEAR_CORE = ("Identity confirmed on a video call, so I reset the password without waiting for security.",
              "Verified the customer on a video call and reset the login myself.",
              "Video call identity check done; reset the password directly instead of escalating.",
              "The customer proved who they are over video, I reset access without the security team.")


def _gap_reason(rng: random.Random) -> str:
    return _pick(rng, _GAP_OPEN, _GAP_CORE, _GAP_TAIL).replace(" ;", ";").replace(" ,", ",")


# ---- tickets that no SOP serves well ---------------------------------------------------------------

_TAX_MESSAGES = (("Our invoices must show our VAT number", "Please add our company tax ID to the invoices",
                  "The invoice is missing our VAT registration number", "How do I put our tax number on invoices",
                  "Accounting needs our VAT ID printed on every invoice"),
                 ("for our accounts team.", "before we can pay.", "— our auditors require it.",
                  "and the old invoices too.", "for the EU reverse charge."))
_TAX_OUTLINE = (("Open Settings, then Billing, then Company details.",
                 "Go to Settings > Billing > Company details.",
                 "In the admin console, open Billing and choose Company details."),
                ("Enter the VAT number in the Tax ID field and save.",
                 "Type your VAT registration number into the Tax ID field, then save.",
                 "Add the tax number in the Tax ID box and press Save."),
                ("Every invoice issued from now on shows the number.",
                 "New invoices will carry the VAT number automatically.",
                 "From the next invoice on, the tax ID is printed on it."),
                ("To reissue past invoices, reply with their numbers and we will regenerate them.",
                 "Send us the numbers of older invoices and we will reissue them with the tax ID.",
                 "Older invoices can be regenerated: just list the invoice numbers in your reply."))
_LANGUAGE_MESSAGES = (("Can the notification emails come in German", "Our staff want the alert emails in Spanish",
                       "How do I change the language of the notification emails"),
                      ("for our whole team?", "instead of English?", "please?"))
_SMS_MESSAGES = (("The SMS verification code never arrives", "I am not receiving the two-factor code by text",
                  "My 2FA text message code does not come through", "No SMS code when I try to sign in",
                  "The one-time passcode SMS is not delivered to my phone"),
                 ("on my new phone.", "since I changed carrier.", "while travelling abroad.", "for an hour now.",
                  ""))
_MISC = ("Can you send me your company's W-9 form?", "Do you have a student discount?",
         "Is there an API rate limit for the reporting endpoint?", "Can I rename my workspace?",
         "How do I print a packing slip?", "Do you sponsor open-source projects?",
         "Can we host your product on our own servers?", "What are your office hours over Christmas?",
         "Is the mobile app available on tablets?", "Could you recommend a consultant in Lisbon?",
         "Can I transfer my licence to a colleague in another company?", "Do you offer training for new admins?")
_REPLY = ("Thank you for getting in touch.", "Thanks for reaching out.", "Happy to help with this.")


def _outline_reply(rng: random.Random, outline: tuple[tuple[str, ...], ...]) -> str:
    steps = [rng.choice(options) for options in outline]
    return " ".join([rng.choice(_REPLY), *steps, "Let us know if anything is unclear."])


# ---- the generator -----------------------------------------------------------------------------

def _moment(rng: random.Random, week_start: dt.datetime) -> dt.datetime:
    return week_start + dt.timedelta(days=rng.randrange(5), hours=rng.randint(8, 17), minutes=rng.randrange(60))


def generate(*, weeks: int = 6, end_week: str | None = None, seed: int = 7, knowledge_dir: Path | None = None,
             plant: bool = True):
    """The events of `weeks` weeks ending with `end_week` (default: the current ISO week), and the manifest.

    With `plant=False` every planted pattern stays below its threshold (8 gap-like overrides, 3
    scattered ones, 3 tax-id and 4 SMS tickets a week): the control history, in which the reports
    must find nothing.

    Returns:
        (events, planted): audit `Event`s oldest first with their times set, and where patterns were planted.
    """
    from sopilot import audit
    from sopilot.core.settings import Settings
    from sopilot.guard import check, guard_ticket
    from sopilot.guard.versions import policies_in_force
    from sopilot.reports.csat import CsatScore, csat_events

    if weeks < 2:
        from sopilot.core.errors import InputError

        raise InputError(f"weeks must be at least 2 (a gap week and a week before it). Currently, weeks is {weeks}")
    knowledge_dir = knowledge_dir or Settings.from_env().knowledge_dir
    rng = random.Random(seed)
    last = parse_week(end_week)
    starts = [last.start - dt.timedelta(days=7 * (weeks - 1 - i)) for i in range(weeks)]
    gap_start = starts[-2]
    events: list[Any] = []
    counter = {"ticket": 0}
    counts = {"gap": 0, "near": 0, "kb_gap": 0, "kb_small": 0, "kb_review": 0}

    def ticket(at: dt.datetime, *, policy: str | None, message: str, facts: dict[str, Any], agent: str,
               action: str, reply: str | None = None, justification: str | None = None,
               probability: float | None = None, score: int | None = None, comment: str | None = None) -> None:
        counter["ticket"] += 1
        ticket_id = f"T-{counter['ticket']:05d}"
        body = {"message": message, **({"sop_id": policy} if policy else {}), **facts,
                "created_at": at.isoformat()}
        policies = policies_in_force(at, knowledge_dir)
        result = guard_ticket(body, policies)
        decision = {**result.to_json(), "policy_version": policies.version}
        matched = policy is not None and (probability is None or probability >= 0.3)
        prob = probability if probability is not None else round(rng.uniform(0.72, 0.97), 3)
        others = [p for p in ("A.1", "A.2", "B.1", "C.1", "I.2", "H.1") if p != policy]
        suggestion = audit.Event(kind="suggestion_made", ticket_id=ticket_id, ticket=body, created_at=at,
                                 sop_ids=tuple([policy] if policy else []) + tuple(rng.sample(others, 2)),
                                 policy=decision["policy"], outcome=decision["outcome"], decision=decision,
                                 verdict="pass", producer="offline", agent=agent, reply=result.reply,
                                 latency_ms=round(rng.uniform(250, 1800), 1),
                                 detail={"matched": matched, "match_probability": prob,
                                         "policy_version": policies.version})
        events.append(suggestion)
        later = at + dt.timedelta(minutes=rng.randint(4, 90))
        text = reply or result.reply
        if action == "wrong_sop":
            events.append(dataclasses.replace(suggestion, kind="wrong_sop", created_at=later, reply=None,
                                              detail={"wrong_sop": True, "relevant": []}))
            later += dt.timedelta(minutes=rng.randint(3, 30))
            action = "edited"
        verdict = check(text, result.decision)
        common = {"created_at": later, "reply": text, "verdict": verdict.verdict,
                  "violations": tuple(v.code for v in verdict.violations)}
        if action == "overridden":
            events.append(dataclasses.replace(suggestion, kind="reply_overridden", justification=justification,
                                              detail={}, **common))
        elif action in ("as_is", "edited"):
            events.append(dataclasses.replace(suggestion, kind="reply_sent", detail={}, **common,
                                              send_mode="edited" if action == "edited" else "as_is"))
        if score is None and rng.random() < 0.7:
            score = rng.choices((5, 4, 3, 2, 1), weights=(45, 30, 12, 8, 5))[0]
        if score is not None:
            answered = later + dt.timedelta(hours=rng.randint(2, 60))
            event, task = csat_events(CsatScore(ticket_id=ticket_id, score=score, comment=comment or (
                rng.choice(("Slow answer.", "Still not solved.", "Not what I asked.")) if score <= 2 else None),
                at=answered, source="survey"), low_score=2, policy=decision["policy"], agent=agent)
            events.append(event)
            if task:
                events.append(audit.Event(kind="ops_task_created", policy=task.policy, ticket_id=ticket_id,
                                          created_at=answered, detail={**task.to_json(), "recorded": True}))

    policies = tuple(_MESSAGES)
    for week_index, start in enumerate(starts):
        for policy in policies:
            for _ in range(rng.randint(9, 13)):
                facts = _facts(policy, rng)
                agent = rng.choice(AGENTS)
                roll = rng.random()
                if roll < 0.10:
                    ticket(_moment(rng, start), policy=policy, message=_message(policy, rng, facts), facts=facts,
                           agent=agent, action="overridden", justification=rng.choice(_ONE_OFF))
                elif roll < 0.14:
                    ticket(_moment(rng, start), policy=policy, message=_message(policy, rng, facts), facts=facts,
                           agent=agent, action="wrong_sop")
                else:
                    ticket(_moment(rng, start), policy=policy, message=_message(policy, rng, facts), facts=facts,
                           agent=agent, action="as_is" if roll < 0.8 else "edited")
        for _ in range(rng.randint(2, 3)):
            ticket(_moment(rng, start), policy=None, message=rng.choice(_MISC), facts={}, agent=rng.choice(AGENTS),
                   action="as_is", probability=round(rng.uniform(0.05, 0.25), 3))
        # the SMS code tickets: B.1 serves them badly (low probability, or marked wrong)
        for _ in range(9 + (week_index % 2) if plant else 4):
            counts["kb_review"] += 1
            wrong = rng.random() < 0.4
            ticket(_moment(rng, start), policy="B.1", message=_pick(rng, _HELLO, *_SMS_MESSAGES, _BYE),
                   facts={"priority": "Low", "failed_login_attempts": 0}, agent=rng.choice(AGENTS),
                   action="wrong_sop" if wrong else "edited", probability=round(rng.uniform(0.32, 0.48), 3))
        # the tax-id tickets: no SOP at all, agents answer along one outline
        for _ in range(4 + (week_index % 2) if plant else 3):
            counts["kb_gap"] += 1
            ticket(_moment(rng, start), policy=None, message=_pick(rng, _HELLO, *_TAX_MESSAGES, _BYE), facts={},
                   agent=rng.choice(AGENTS), action="as_is", reply=_outline_reply(rng, _TAX_OUTLINE),
                   probability=round(rng.uniform(0.08, 0.28), 3))
        if week_index % 2 == 0:
            for _ in range(4):
                counts["kb_small"] += 1
                ticket(_moment(rng, start), policy=None, message=_pick(rng, _HELLO, *_LANGUAGE_MESSAGES, _BYE),
                       facts={}, agent=rng.choice(AGENTS), action="as_is",
                       reply="Thanks for asking. Notification emails follow each user's profile language: change it "
                             "under Profile > Language.", probability=round(rng.uniform(0.08, 0.25), 3))
        if start != gap_start and week_index % 2 == 1:
            for _ in range(4):  # the gap's reason, below the threshold in this week
                facts = {"priority": "Low", "amount": f"{rng.choice((160, 210, 275)):.2f}"}
                ticket(_moment(rng, start), policy="A.1", message=_message("A.1", rng, facts), facts=facts,
                       agent=rng.choice(GAP_AGENTS), action="overridden", justification=_gap_reason(rng),
                       reply=f"I have refunded the duplicate charge of ${facts['amount']} to your card.")

    gap_count = 12 if plant else 8
    for index in range(gap_count):
        counts["gap"] += 1
        facts = {"priority": rng.choice(("Low", "Medium")), "amount": f"{rng.choice((165, 189, 230, 310, 420)):.2f}"}
        ticket(_moment(rng, gap_start), policy="A.1", message=_message("A.1", rng, facts), facts=facts,
               agent=GAP_AGENTS[index % len(GAP_AGENTS)], action="overridden", justification=_gap_reason(rng),
               reply=f"I have refunded the duplicate charge of ${facts['amount']} to your card.")
    for index in range(6):
        counts["near"] += 1
        facts = {"priority": "Medium", "failed_login_attempts": 4}
        ticket(_moment(rng, gap_start), policy="B.1", message=_message("B.1", rng, facts), facts=facts,
               agent=AGENTS[(index * 5) % len(AGENTS)], action="overridden", justification=rng.choice(_NEAR_CORE),
               reply="I have reset your password; you can sign in again now.")
    for reason in _SCATTERED if plant else _SCATTERED[:3]:
        facts = {"priority": "Medium", "under_warranty": True, "damage": "major"}
        ticket(_moment(rng, gap_start), policy="C.1", message=_message("C.1", rng, facts), facts=facts,
               agent=INCONSISTENT_AGENT, action="overridden", justification=reason,
               reply="We are sending you a replacement right away.")
    facts = {}
    ticket(_moment(rng, gap_start), policy="H.1", message=_message("H.1", rng, facts), facts=facts,
           agent="george.adams",
           action="overridden", justification="The courier gave me a new delivery date over the phone.",
           reply="Your parcel will now arrive in [NUMBER] days.")
    events.sort(key=lambda e: (e.created_at, e.ticket_id or ""))
    for _ in range(4):  # one agent, four overrides, one reason: consistent, never flagged
        facts = {"tenure_months": 3, "failed_payments": 1, "plan_months": 2}
        ticket(_moment(rng, gap_start), policy="I.2", message=_message("I.2", rng, facts), facts=facts,
               agent=CONSISTENT_AGENT, action="overridden", justification=rng.choice(_CONSISTENT),
               reply="Your two-month payment plan is approved.")
    planted = Planted(planted=plant, inconsistent_count=len(_SCATTERED) if plant else 3,
                      weeks=tuple(week_label(s.date()) for s in starts), gap_week=week_label(gap_start.date()),
                      gap_count=counts["gap"], near_miss_count=counts["near"], kb_gap_count=counts["kb_gap"],
                      kb_small_count=counts["kb_small"], kb_review_count=counts["kb_review"],
                      tickets=counter["ticket"], events=len(events))
    return events, planted


def write_demo(settings, *, weeks: int = 6, end_week: str | None = None, seed: int = 7,
               plant: bool = True) -> Planted:
    """Fill the configured audit database with a generated history; return the manifest.

    Raises:
        UserError: the database already holds events (a demo history is never mixed into a real one).
    """
    from sopilot import audit
    from sopilot.core.errors import UserError

    log = audit.open_log(settings)
    if log.count():
        raise UserError(f"the audit database {settings.audit_url!r} already holds {log.count()} events: point "
                        "SOPILOT_DATABASE_URL (or --database) at a new file for the demo history")
    events, planted = generate(weeks=weeks, end_week=end_week, seed=seed, knowledge_dir=settings.knowledge_dir,
                               plant=plant)
    for start in range(0, len(events), 500):
        log.record(*events[start:start + 500])
    return planted
