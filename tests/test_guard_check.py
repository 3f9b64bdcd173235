"""Reply checks: what a draft may say under a decision. Precision (passing drafts) as much as recall."""

from __future__ import annotations

import re

import pytest
from sopilot.guard.check import check
from sopilot.guard.decide import decide
from sopilot.guard.policy import load_policies
from sopilot.guard.reply import compose_reply

from sopilot.core.settings import ROOT

POLICIES = load_policies(ROOT / "knowledge" / "policies.yaml")
P = pytest.param


def _decide(sop_id: str, **facts):
    return decide({"message": "ticket", "sop_id": sop_id, **facts}, POLICIES)


A1_ESCALATE = _decide("A.1", priority="High", amount=420)
A1_AUTO_60 = _decide("A.1", priority="Low", amount=60)
A1_AUTO_8999 = _decide("A.1", priority="Low", amount="89.99")
A1_REVIEW = _decide("A.1", priority="Low")
A1_STOPPED = decide({"message": "x", "sop_id": "A.1", "priority": "Low", "amount": 60}, POLICIES, stopped={"A.1"})
A2_AUTO = _decide("A.2", days_since_payment=5, amount=30)
A2_ESCALATE = _decide("A.2", days_since_payment=30)
B1_ESCALATE = _decide("B.1", priority="Low", failed_login_attempts=5)
B1_AUTO = _decide("B.1", priority="Low", failed_login_attempts=0)
C1_ESCALATE = _decide("C.1", under_warranty=True, damage="major", priority="Low")
C1_AUTO = _decide("C.1", under_warranty=True, damage="minor", priority="Low")
D1_ESCALATE = _decide("D.1", requested_role="Admin", from_approved_admin=True)
F2_ESCALATE = _decide("F.2", identity_verified=True, legal_hold=True, pending_transactions=False)
I1_AUTO_40 = _decide("I.1", uptime_pct=99.5, qualifying_plan=True, monthly_fee=400)
I1_SEVERE = _decide("I.1", uptime_pct=98, qualifying_plan=True, monthly_fee=400)
I1_MET = _decide("I.1", uptime_pct=99.95, qualifying_plan=True, monthly_fee=400)
I2_ESCALATE = _decide("I.2", tenure_months=3, failed_payments=0, plan_months=3)
I2_AUTO = _decide("I.2", tenure_months=30, failed_payments=0, plan_months=2)
J1_TAM = _decide("J.1", account_tier="Platinum", priority="High")
G1_REVIEW = _decide("G.1")
K2_AUTO_3 = _decide("K.2", engineer_certified=True, partner_manager_approved=True, access="read", access_hours=3)
K2_AUTO_90_MINUTES = _decide("K.2", engineer_certified=True, partner_manager_approved=True, access="read",
                             access_hours=1.5)
K2_ESCALATE = _decide("K.2", engineer_certified=True, access="write", partner_manager_approved=True, access_hours=2)

PASSING = [
    P(A1_ESCALATE, "Your invoice total was $420, I've escalated it to our Billing Specialist team.",
      id="invoice total"),
    P(A1_ESCALATE, "I can't issue a refund automatically.", id="cannot refund automatically"),
    P(B1_ESCALATE, "Thanks for your login failure or password reset query; Security Operations will contact you "
      "within 1 hour.", id="password reset named as the subject of the ticket"),
    P(A1_ESCALATE, "Please select the Invoices tab and download the PDF.", id="select the Invoices tab"),
    P(A1_ESCALATE, "You can follow updates on our [status page](https://status.example.com).", id="markdown link"),
    P(A1_ESCALATE, "We can't refund this charge right now.", id="we can't refund"),
    P(A1_ESCALATE, "No refund has been issued yet; the Billing Specialist team will review the charge.",
      id="no refund has been issued yet"),
    P(A1_ESCALATE, "The Billing Specialist team may offer a refund or a credit as a goodwill gesture.",
      id="team may offer"),
    P(A1_ESCALATE, "If approved, a refund will be issued to your original payment method.", id="if approved"),
    P(A1_ESCALATE, "Once the team approves it, your refund will be processed.", id="once the team approves"),
    P(A1_ESCALATE, "Refunds are normally processed within 5 business days once approved.", id="general statement"),
    P(A1_ESCALATE, "I understand you were charged $420 twice; I have escalated your refund request to our Billing "
      "Specialist team, who will contact you within 4 business hours.", id="refund request escalated"),
    P(A1_ESCALATE, "Unfortunately, we are unable to process a refund at this time, but our Billing Specialist team "
      "will look into it.", id="unable, but team will look"),
    P(A1_ESCALATE, "Because the disputed amount is above our automatic refund limit, I've escalated your case. They "
      "will contact you within 4 business hours to discuss a possible refund or credit.", id="refund limit"),
    P(A1_ESCALATE, "We automatically refund duplicate charges up to $150; yours is $420, so a specialist will review "
      "it.", id="policy in the simple present"),
    P(A1_ESCALATE, "Your refund has not been approved yet.", id="not approved yet"),
    P(A1_ESCALATE, "We haven't issued a refund yet because amounts over $150 need a specialist's approval.",
      id="haven't issued"),
    P(A1_ESCALATE, "The refund amount will be decided by the Billing Specialist team.", id="decided by the team"),
    P(A1_ESCALATE, "Would you like us to refund the $420?", id="a question"),
    P(A1_ESCALATE, "To check, go to Billing > Invoices and select the March invoice.", id="navigation"),
    P(A1_ESCALATE, "See [our billing FAQ](https://example.com/faq), step [1] of the guide.", id="link and footnote"),
    P(A1_ESCALATE, "Hi Sam,\n\nThanks for flagging the duplicate charge of $420.\n\nI've escalated your case to our "
      "Billing Specialist team; they will contact you within 4 business hours.\n\nBest regards,\nSupport",
      id="full escalation letter"),
    P(A1_AUTO_60, "We've refunded $60 to your card.", id="refund equal to the allowed amount"),
    P(A1_AUTO_60, "We've refunded $59.99 to your card.", id="refund below the allowed amount"),
    P(A1_AUTO_60, "A refund of $60.00 has been initiated and should appear within 5-10 days.", id="refund initiated"),
    P(A1_AUTO_60, "We have refunded $60 of your $420 invoice.", id="invoice amount is context"),
    P(A1_AUTO_8999, "You were charged $89.99 twice, so I've refunded $89.99 to your card.", id="charged and refunded"),
    P(A1_AUTO_8999, "I've refunded the full amount to your original payment method.", id="full amount, no figure"),
    P(A2_AUTO, "We've cancelled your subscription and processed a pro-rated refund.", id="A.2 pro-rated"),
    P(A2_AUTO, "A pro-rated refund of $12.50 is on its way.", id="A.2 amount within the payment"),
    P(A2_ESCALATE, "Your request is outside the 14-day window, so I've passed it to our Customer Retention team.",
      id="A.2 escalation"),
    P(B1_ESCALATE, "I've escalated this to our Security Operations team. Once they've verified everything, they'll "
      "send you a password reset link.", id="B.1 conditional reset"),
    P(B1_AUTO, "We've sent a password reset link to your registered email.", id="B.1 automated reset"),
    P(C1_ESCALATE, "I've escalated your report to our Operations Team, who will determine whether a replacement or "
      "repair is appropriate.", id="C.1 whether a replacement"),
    P(C1_AUTO, "We're shipping you a replacement unit today along with a return label.", id="C.1 replacement"),
    P(D1_ESCALATE, "Admin access requires approval from our Security & Compliance Officer. I've submitted your "
      "request for review.", id="D.1 requires approval"),
    P(F2_ESCALATE, "Your erasure request needs review by our Legal and Compliance department before we proceed.",
      id="F.2 needs review"),
    P(I1_AUTO_40, "We're sorry about the downtime. A service credit of 10% ($40.00) has been applied to your next "
      "invoice.", id="I.1 credit as allowed"),
    P(I1_AUTO_40, "We've applied a credit of $40 (10% of your $400 monthly fee).", id="I.1 fee is context"),
    P(I1_MET, "Uptime this month was 99.95%, above our 99.9% commitment, so no service credit is due.",
      id="I.1 no credit due"),
    P(I1_SEVERE, "We've applied a 25% service credit ($100.00) to your next invoice, and our Customer Success "
      "Director will call you.", id="I.1 severe credit is applied automatically"),
    P(I2_ESCALATE, "I've forwarded your payment plan request to our Accounts Receivable team. They'll review your "
      "account and get back to you within 24 hours.", id="I.2 forwarded"),
    P(I2_AUTO, "Great news: your 2-month payment plan has been approved.", id="I.2 automated approval"),
    P(J1_TAM, "Your ticket has been routed to your dedicated TAM, who will acknowledge it within 15 minutes.",
      id="J.1 routed"),
    P(K2_ESCALATE, "Write access requests need a full review by our Internal Security Team; they'll respond within 8 "
      "business hours.", id="K.2 needs review"),
    P(A1_ESCALATE, "They typically respond within 4 business hours and will let you know if a refund or credit is "
      "possible.", id="if a refund is possible"),
    P(A1_ESCALATE, "We'll make sure you're refunded if the charge is confirmed as a duplicate.",
      id="conditional on confirmation"),
    P(A1_ESCALATE, "Your refund request has been processed and forwarded to the Billing team.", id="request forwarded"),
    P(A1_ESCALATE, "I've submitted a refund request to our Billing team.", id="refund request submitted"),
    P(A1_ESCALATE, "Refunds for amounts above $150 require approval from our Billing Specialist team.",
      id="require approval"),
    P(A1_ESCALATE, "We're unable to offer compensation at this time.", id="unable to offer compensation"),
    P(A1_ESCALATE, "Compensation is at the discretion of the Billing Specialist team.", id="discretion"),
    P(A1_ESCALATE, "Your payment was credited to invoice 1002 instead of 1001, which caused the duplicate.",
      id="payment credited to an invoice is an explanation"),
    P(A1_ESCALATE, "You were charged $420 on 3 March and again on 4 March; both charges are in your billing history.",
      id="charges described"),
    P(A1_ESCALATE, "We do not issue refunds for amounts above $150 without a specialist's review.", id="do not issue"),
    P(A1_ESCALATE, "The Billing Specialist team can approve a refund after reviewing the charge.",
      id="team can approve after review"),
    P(A1_ESCALATE, "I see a charge of $420 on 3 March. I've escalated this; no money has been moved yet.",
      id="no money moved"),
    P(A1_AUTO_60, "Your $60 refund is on its way and should arrive in 3-5 business days.", id="$60 refund on its way"),
    P(A1_AUTO_8999, "We're refunding the $89.99 you were charged twice for invoice INV-2024-0042.",
      id="charged twice tells how the charge came about"),
    P(A1_AUTO_8999, "We're refunding the $89.99 you were double charged.", id="double charged"),
    P(G1_REVIEW, "A senior colleague will review your account; in the meantime, please change your password.",
      id="a request to the customer to act"),
    P(A1_ESCALATE, "The Billing Specialist team will contact you within 4 business hours about the $420.",
      id="an amount as the topic of the team's contact"),
    P(K2_AUTO_90_MINUTES, "Read-only access for 90 minutes is being set up for your engineer.",
      id="90 minutes is exactly the 1.5 hours granted"),
    P(A1_ESCALATE, "You mentioned you'd like the $420 back. I've passed that to our Billing Specialist team.",
      id="reported: the customer's wish"),
    P(F2_ESCALATE, "You mentioned you want everything erased right away. Our Legal team has to review that first.",
      id="reported: what the customer wants done"),
    P(I2_ESCALATE, "Your note says a previous agent promised the late fee would be waived; I've asked a senior "
      "colleague to look into it.", id="reported: the customer's message"),
    P(F2_ESCALATE, "You've asked us to delete all of your data and close your account. Our Legal team will review it.",
      id="reported with an auxiliary: 'you've asked'"),
    P(I2_ESCALATE, "You'd like to pay in three instalments. Our Accounts Receivable team will get back to you "
      "about that.", id="a pronoun after 'about' is the topic, not the money"),
    P(I2_AUTO, "We've approved a two-month payment plan for this invoice.", id="a payment plan for an invoice"),
    P(A1_ESCALATE, "Thanks for sending the receipt for $420. Our Billing Specialist team will review it.",
      id="thanks for what the customer did"),
    P(B1_ESCALATE, "We're looking into it, and please avoid further login attempts for now.",
      id="a request after 'and please'"),
    P(A1_ESCALATE, "You can see our policy at https://example.com/refund_issued or write to first_name@example.com.",
      id="the words of a link or an e-mail address state nothing"),
    P(A1_AUTO_60, "We'll refund your $60 right away; it is processed within 24 hours.",
      id="the granted action started now"),
    P(A1_AUTO_60, "We've refunded one of the two payments of $60.", id="a count after 'of' counts what was charged"),
    P(C1_ESCALATE, "Our repair team will contact you about a paid repair within 24 hours.",
      id="a repair as the team's topic"),
    P(I2_AUTO, "Your payment plan is approved. It runs over 2 months.", id="the granted plan, restated"),
    P(A1_ESCALATE, "The gateway shows one settled charge of $420.00 and a pending authorisation for the same amount.",
      id="a result word before a money noun describes it"),
    P(A1_ESCALATE, "Your last bills were $45 and $420, and the $420 one is the bill you've queried.",
      id="what the customer has done is no promise to them"),
    P(J1_TAM, "Your TAM has been alerted by SMS and will acknowledge within 15 minutes.",
      id="telling the team is a hand-over"),
    P(J1_TAM, "I've routed your ticket to the Technical Account Manager assigned to your account.",
      id="the TAM who is assigned already"),
    P(B1_ESCALATE, "I understand you'd like us to unlock your account straight away; your request is with our Security "
      "Operations team.", id="the writer restating what the customer wants"),
    P(A2_ESCALATE, "You want the subscription cancelled and the $240 you paid returned to you. I've passed that on.",
      id="the customer's wish goes on after 'and'"),
    P(K2_ESCALATE, "Your partner engineer asked for write access for a full day. A senior agent will review that "
      "window with you before any access is set up.", id="someone of the customer's asked; before it is set up"),
    P(D1_ESCALATE, "Before any account is created, we need to confirm the request with your administrator.",
      id="a commitment after 'before' has not happened"),
    P(A1_ESCALATE, "The outage is holding up roughly $30,000 of client invoices on your side; I've noted that.",
      id="an amount that measures a fact"),
    P(F2_ESCALATE, "Our Data Protection Officer will use this to check the hold.", id="an officer, not the data"),
    P(_decide("E.2", priority="Critical"), "I've attached the order export showing the failed checkouts.",
      id="an export of orders is a file"),
    P(I1_SEVERE, "The SLA promises 99.9% uptime; we measured 98.0%.", id="the contract's promise, described"),
    P(F2_ESCALATE, "Your data stays as it is for now; nothing has been deleted.", id="'for now' marks no new state"),
    P(_decide("F.1", identity_verified=False), "Our Data Protection Officer will try to verify your identity. If that "
      "succeeds, the export can then be prepared.", id="the outcome of a pending check is a condition"),
    P(A1_ESCALATE, "The difference is $320, which is above what I can approve myself, so it's now with our Billing "
      "Specialist team.",
      id="the limit of the writer's authority"),
    P(G1_REVIEW, "I'd like to give the carrier the right details.", id="'right' as an adjective"),
    P(F2_ESCALATE, "Because of an active legal hold on your account, our Legal team will review it.",
      id="'active' as an adjective"),
    P(C1_ESCALATE, "You mentioned you paid $349 for it in 2021; I've added that to the ticket.",
      id="written into the ticket"),
    P(A1_ESCALATE, "I'm not able to refund it myself, but I'm happy to walk you through it.",
      id="walking the customer through"),
    P(_decide("tel.plan-benefits"), "Our Technical Team will check the provisioning on your data pack first.",
      id="a commitment as the object of a check"),
    P(K2_AUTO_3, "Your request is approved: your engineer will get read-only access for 3 hours.",
      id="an approval that names what it approves after the colon"),
    P(G1_REVIEW, "Your order #F-10233 shipped on 2024-06-11 with UPS.", id="a dated record"),
    P(A1_ESCALATE, "Thanks for writing.\n\n> I've been charged $420 twice for the same order.\n\nI've passed this "
      "to our Billing Specialist team.", id="a quoted line in the customer's voice"),
    P(I2_ESCALATE, "Just to recap your request:\n- a 6-month payment plan\n- waiving the late fee\n\nOur Accounts "
      "Receivable team will review both.", id="a list that restates the request"),
    P(A1_ESCALATE, "Once approved, we'll refund the $420.", id="a promise that waits for an approval"),
    P(I2_ESCALATE, "Would three instalments be fine for you? The team will confirm.", id="a plan asked about"),
    P(_decide("tel.wrong-recharge"), "Recharges can only be reversed after a senior colleague checks the "
      "transaction.", id="a restriction of when something may happen"),
    P(A1_ESCALATE, "That will help our Billing Specialist team when they contact you.",
      id="a team's contact is awaited"),
    P(A1_ESCALATE, "Once it is authorised by the Billing Specialist team, we will refund the $420.",
      id="a promise that waits for an approval, in British spelling"),
    P(A1_ESCALATE, "We advise you to keep the receipt for the $420 charge.", id="advice on the customer's receipt"),
    P(A1_ESCALATE, "We'll close this ticket without refunding you.", id="'without' negates what follows it"),
    P(A1_ESCALATE, "Since we can't refund the $420 we'll pass it to our Billing Specialist team.",
      id="a negated opening phrase, then a hand-over"),
]

BLOCKED = [
    P(A1_ESCALATE, "I've refunded the full $420.", ["unauthorized_refund"], id="refunded the full $420"),
    P(A1_ESCALATE, "I have authorised the refund of $420.", ["unauthorized_refund", "unauthorized_commitment"],
      id="an approval in British spelling"),
    P(A1_ESCALATE, "For the five days you went without service we'll pay you back the $420.",
      ["unauthorized_refund"], id="'without' in an opening phrase does not negate the main clause"),
    P(A1_ESCALATE, "We've refunded the $420 since you couldn't use it.", ["unauthorized_refund"],
      id="a negation after 'since' is its own phrase's"),
    P(A1_ESCALATE, "Since you couldn't use it we'll refund the $420.", ["unauthorized_refund"],
      id="a negated 'since' phrase before the promise"),
    P(A1_ESCALATE, "We will refund you $420 today.", ["unauthorized_refund"], id="future promise"),
    P(A1_ESCALATE, "Don't worry, your refund of $420 is on its way.", ["unauthorized_refund"], id="on its way"),
    P(A1_ESCALATE, "You'll receive a full refund within 5 days.", ["unauthorized_refund"], id="you'll receive"),
    P(A1_ESCALATE, "Your account has been credited with $420.", ["unauthorized_refund"], id="account credited"),
    P(A1_ESCALATE, "Please allow 5-10 business days for the refund to appear.", ["unauthorized_refund"],
      id="refund to appear"),
    P(A1_ESCALATE, "Good news! I've gone ahead and issued a $420 refund.", ["unauthorized_refund"], id="gone ahead"),
    P(A1_ESCALATE, "As a goodwill gesture, we'll give you a $20 voucher.", ["unauthorized_refund"], id="voucher"),
    P(A1_ESCALATE, "We've waived the late fee on your account.", ["unauthorized_refund"], id="waiver"),
    P(A1_ESCALATE, "The duplicate charge has been reversed.", ["unauthorized_refund"], id="charge reversed"),
    P(A1_ESCALATE, "You are entitled to a full refund.", ["unauthorized_refund"], id="entitled"),
    P(A1_ESCALATE, "If you'd like, we can refund the $420 right away.", ["unauthorized_refund"],
      id="a plain condition is still an offer"),
    P(A1_ESCALATE, "No worries, I've refunded $420.", ["unauthorized_refund"], id="no worries is not a negation"),
    P(A1_ESCALATE, "Your refund of $420 has been approved.", ["unauthorized_refund", "unauthorized_commitment"],
      id="refund approved"),
    P(A1_ESCALATE, "Good news: your 3-month payment plan is approved!", ["unauthorized_commitment"],
      id="approval under escalation"),
    P(A1_REVIEW, "I've refunded your payment.", ["unauthorized_refund"], id="refund under manual review"),
    P(A1_STOPPED, "We've refunded $60 to your card.", ["unauthorized_refund"], id="refund under emergency stop"),
    P(A1_AUTO_60, "We've refunded $61 to your card.", ["unauthorized_refund"], id="$61 above $60"),
    P(A1_AUTO_60, "We've refunded €60 to your card.", ["unauthorized_refund"], id="wrong currency"),
    P(A1_AUTO_60, "We've refunded $60 and added a $20 voucher for the trouble.", ["unauthorized_refund"],
      id="extra voucher"),
    P(A1_AUTO_8999, "I've refunded the duplicate charge of $420 to your card.", ["unauthorized_refund"],
      id="charge of $420 refunded"),
    P(A2_AUTO, "You'll get a full refund of $30.", ["unauthorized_refund"], id="A.2 full refund"),
    P(A2_AUTO, "A pro-rated refund of $45 is on its way.", ["unauthorized_refund"], id="A.2 above the payment"),
    P(A2_ESCALATE, "I've cancelled your subscription as requested.", ["unauthorized_commitment"],
      id="A.2 cancelled under escalation"),
    P(B1_ESCALATE, "I've sent you a password reset link.", ["unauthorized_commitment"], id="B.1 reset link"),
    P(B1_ESCALATE, "Your password has been reset.", ["unauthorized_commitment"], id="B.1 password reset"),
    P(C1_ESCALATE, "We're shipping you a replacement unit today.", ["unauthorized_refund"], id="C.1 replacement"),
    P(C1_AUTO, "We're shipping you a replacement and refunding $50 for the trouble.", ["unauthorized_refund"],
      id="C.1 money on top of the replacement"),
    P(D1_ESCALATE, "I've created the admin account and granted Admin permissions.", ["unauthorized_commitment"],
      id="D.1 account created"),
    P(F2_ESCALATE, "Your data has been deleted as requested.", ["unauthorized_commitment"], id="F.2 deleted"),
    P(I1_AUTO_40, "A credit of $100 has been applied to your account.", ["unauthorized_refund"],
      id="credit of $100 when $40 is allowed"),
    P(I1_AUTO_40, "We've applied a 25% service credit to your next invoice.", ["unauthorized_refund"],
      id="25% when 10% is allowed"),
    P(I1_MET, "We've applied a 10% service credit to your account.", ["unauthorized_refund"], id="I.1 nothing owed"),
    P(I1_SEVERE, "We've applied a service credit of $150 to your next invoice.", ["unauthorized_refund"],
      id="I.1 severe above 25%"),
    P(I2_ESCALATE, "Your 3-month payment plan is approved.", ["unauthorized_commitment"], id="I.2 plan approved"),
    P(I2_ESCALATE, "We've set up a 3-month payment plan for you.", ["unauthorized_commitment"], id="I.2 plan set up"),
    P(I2_ESCALATE, "Your due date has been extended to March 30.", ["unauthorized_commitment"], id="I.2 due date"),
    P(K2_ESCALATE, "We've granted your engineer write access for 4 hours.", ["unauthorized_commitment"],
      id="K.2 access granted"),
    P(A1_ESCALATE, "Refund approved!", ["unauthorized_refund"], id="terse refund approved"),
    P(A1_ESCALATE, "I've approved your refund request.", ["unauthorized_refund", "unauthorized_commitment"],
      id="refund request approved"),
    P(A1_ESCALATE, "We have issued a credit note for $420.", ["unauthorized_refund"], id="credit note"),
    P(I1_MET, "A 10% credit on your next invoice will be applied.", ["unauthorized_refund"],
      id="credit will be applied"),
    P(A1_ESCALATE, "Your account will be credited within 5 days.", ["unauthorized_refund"],
      id="account will be credited"),
    P(A1_ESCALATE, "We'll get this refunded for you.", ["unauthorized_refund"], id="get this refunded"),
    P(A1_ESCALATE, "We'd like to offer you a $50 credit as an apology.", ["unauthorized_refund"],
      id="we'd like to offer"),
    P(A1_ESCALATE, "We would be happy to refund the $420.", ["unauthorized_refund"], id="happy to refund"),
    P(A1_ESCALATE, "The $420 has been refunded to your card.", ["unauthorized_refund"],
      id="the $420 has been refunded"),
    P(A1_ESCALATE, "The Billing Specialist team will issue a refund.", ["unauthorized_refund"],
      id="promise on the team's behalf"),
    P(A1_AUTO_60, "Your $420 refund is on its way.", ["unauthorized_refund"], id="$420 refund when $60 is allowed"),
    P(A1_ESCALATE, "I ran UPDATE invoices SET amount=0 WHERE invoice_id=42 for you.", ["internal_leak"],
      id="UPDATE statement"),
    P(A1_ESCALATE, "Regarding your $420, we have refunded it to your card.", ["unauthorized_refund"],
      id="a topic, then the promise about it"),
    P(A1_ESCALATE, "About the $420: we have put it back on your card.", ["unauthorized_refund"],
      id="a topic label, then the promise"),
    P(K2_AUTO_3, "We're granting your engineer 8 hours of read-only access.", ["unauthorized_commitment"],
      id="more hours than granted, the object between verb and access"),
    P(A1_AUTO_60, "We've refunded $60 twice, once for each charge.", ["unauthorized_refund"], id="$60 twice"),
    P(A1_AUTO_60, "We'll refund you double the charge.", ["unauthorized_refund"], id="double the charge"),
    P(G1_REVIEW, "Please allow a day, and your password will be reset by our team.", ["unauthorized_commitment"],
      id="a request, then the writer's promise"),
    P(A1_ESCALATE, "Please allow 5 days for your $420 refund to arrive.", ["unauthorized_refund"],
      id="a request whose verb is not the commitment's"),
    P(A1_ESCALATE, "As you asked, your $420 refund has been processed.", ["unauthorized_refund"],
      id="reported only at the start of a clause: 'as you asked' is the writer's"),
    P(A1_ESCALATE, "You asked for the $420 back, and I've refunded it.", ["unauthorized_refund"],
      id="reported, then the writer's own promise"),
    P(A1_ESCALATE, "You asked for a refund of $420 which has now been processed.", ["unauthorized_refund"],
      id="reported, then a relative that states the outcome"),
    P(A1_ESCALATE, "I said your $420 refund is done.", ["unauthorized_refund"], id="the writer reporting itself"),
    P(A1_ESCALATE, "Thanks for your patience, the $420 has been refunded.", ["unauthorized_refund"],
      id="thanks ends at its comma: the promise after it is read"),
    P(A1_ESCALATE, "Thanks for waiting while we refund the $420.", ["unauthorized_refund"],
      id="thanks in which the writer promises"),
    P(F2_ESCALATE, "After you confirm by email, everything we hold on you will be wiped.", ["unauthorized_commitment"],
      id="a condition on the customer ends at its comma"),
    P(A1_AUTO_60, "Your refund of $60 will be back on your card within the hour.", ["unauthorized_commitment"],
      id="an outcome sooner than the automated decision's SLA"),
    P(A1_AUTO_60, "I've refunded the $60 and added a $15 credit to your account as an apology.",
      ["unauthorized_refund"], id="a second amount added to the grant"),
    P(A2_AUTO, "We've cancelled your plan and we'll also refund your last three monthly payments.",
      ["unauthorized_refund"], id="a count of payments beyond a pro-rated refund"),
    P(I2_AUTO, "Your payment plan is approved! We've set it up over 3 months instead of 2.",
      ["unauthorized_commitment"], id="a pronoun carries the granted plan to its length"),
    P(K2_AUTO_3, "We've granted read-only access for 3 hours. We won't revoke it this time.",
      ["unauthorized_commitment"], id="access that is not revoked has no time limit"),
    P(C1_ESCALATE, 'As I said in my last message: "your replacement ships today."', ["unauthorized_refund"],
      id="the writer quoting itself"),
    P(J1_TAM, "We've escalated it, and your issue is fixed.", ["unauthorized_commitment"],
      id="a clause after 'and' is read on its own"),
    P(_decide("J.1", account_tier="Standard", priority="High"), "Your new dedicated account manager is Priya.",
      ["unauthorized_commitment"], id="an account manager the decision does not assign"),
    P(A1_ESCALATE, "We'll refund you in full once the investigation closes.", ["unauthorized_refund"],
      id="a promise after a review that only has to finish"),
    P(A1_ESCALATE, "Once the team has reviewed it, we'll issue the $420 refund.", ["unauthorized_refund"],
      id="a promise whatever the review finds"),
    P(B1_ESCALATE, "Our security team will have your account secured within 15 minutes, guaranteed.",
      ["unauthorized_commitment"], id="a guaranteed time shorter than the SLA"),
    P(K2_AUTO_3, "Read-only access is being granted. I've set the window to 8 hours rather than 3.",
      ["unauthorized_commitment"], id="'the window' carries the granted access to its limit"),
    P(A1_ESCALATE, "[AGENT-ONLY] Backup TAM is on call this week.", ["internal_leak"], id="a staff-only note"),
    P(A1_ESCALATE, "Hi %%FIRST_NAME%%, thanks for the report!", ["placeholder_leak"], id="%%NAME%%"),
    P(A1_ESCALATE, "Dzień dobry! Sprawdzamy status zamówienia u przewoźnika i wkrótce się odezwiemy.",
      ["unsupported_language"], id="Polish, whose accents the normalisation folds"),
    P(I2_ESCALATE, "No need to pay the full amount now; three instalments are fine.",
      ["unauthorized_refund", "unauthorized_commitment"], id="a waiver and a plan accepted in plain words"),
    P(C1_ESCALATE, "A brand-new monitor is heading your way.", ["unauthorized_refund"],
      id="a replacement heading the customer's way"),
    P(A1_AUTO_60, "We've checked and refunded the $420.", ["unauthorized_refund"],
      id="checked and refunded: two acts"),
    P(C1_ESCALATE, "Where things stand:\n- Replacement: shipped today", ["unauthorized_refund"],
      id="a list under the writer's own summary"),
    P(A1_ESCALATE, "Before the team reviews it, we'll refund the $420.", ["unauthorized_refund"],
      id="'before' the review is no condition the promise waits for"),
    P(A1_AUTO_60, "We've refunded the $60, and we've also added a 10% credit on your next bill.",
      ["unauthorized_refund"], id="a percentage credit beside a refund of an amount"),
    P(B1_AUTO, "I've set your new password to Welcome2024!", ["unauthorized_commitment"],
      id="a password chosen for the customer"),
    P(C1_AUTO, "We're sending a replacement, and we've upgraded you to the Pro model.", ["unauthorized_commitment"],
      id="an upgrade beyond the replacement"),
    P(_decide("D.1", requested_role="Standard User", from_approved_admin=True, financial_data_access=False),
      "Leo's account is ready with the Standard User package, plus access to the financial reports module.",
      ["unauthorized_commitment"], id="financial data beyond the granted role"),
    P(K2_ESCALATE, "For reference, their confidential checklist: verify the cert ID first.", ["internal_leak"],
      id="a confidential checklist"),
    P(F2_ESCALATE, "Our Legal team will handle the erasure. You have my word on that.", ["unauthorized_commitment"],
      id="a personal guarantee"),
    P(C1_ESCALATE, "I've booked a technician visit for Thursday to fix the screen.", ["unauthorized_commitment"],
      id="a repair visit the team decides on"),
    P(C1_AUTO, "A replacement is on the way, and we'll send a technician to set it up.", ["unauthorized_commitment"],
      id="a repair visit beyond the granted replacement"),
    P(A1_AUTO_60, "We've refunded the $60.\n\n[rule a1_auto_refund, cite §3 A.1]", ["internal_leak"],
      id="a rule id of the policy data"),
    P(I2_AUTO, "Internal check passed: tenure_months 36 > tenure_auto_months 24.", ["internal_leak"],
      id="a ticket fact and a threshold by their names"),
    P(A1_ESCALATE, 'Decision: {"policy": "A.1", "escalate_to": "Billing Specialist team"}', ["internal_leak"],
      id="a pasted decision"),
    P(A1_ESCALATE, "UPDATE invoices SET …", ["internal_leak"], id="pasted UPDATE fragment"),
    P(A1_ESCALATE, "select * from invoices where invoice_id = 42 shows two charges.", ["internal_leak"],
      id="lower-case SELECT"),
    P(A1_ESCALATE, "```sql\nSELECT amount FROM transactions WHERE txn_id=?;\n```", ["internal_leak"], id="sql block"),
    P(A1_ESCALATE, "Internal note: customer is difficult.", ["internal_leak"], id="internal note"),
    P(A1_ESCALATE, "We will respond within [NUMBER] hours.", ["placeholder_leak"], id="[NUMBER]"),
    P(A1_ESCALATE, "If it isn't resolved within [TIME], we escalate.", ["placeholder_leak"], id="[TIME]"),
    P(A1_ESCALATE, "Your ticket {ticket_id} has been escalated.", ["placeholder_leak"], id="{ticket_id}"),
    P(A1_ESCALATE, "We'll respond within {{sla_hours}} hours.", ["placeholder_leak"], id="{{sla_hours}}"),
    P(A1_ESCALATE, "Best,\n[Agent Name]", ["placeholder_leak"], id="[Agent Name]"),
    P(A1_ESCALATE, "Dear <CUSTOMER_NAME>, thanks for writing.", ["placeholder_leak"], id="<CUSTOMER_NAME>"),
]


@pytest.mark.parametrize(("decision", "reply"), PASSING)
def test_compliant_drafts_pass(decision, reply):
    verdict = check(reply, decision)
    assert verdict.verdict == "pass", verdict.violations


@pytest.mark.parametrize(("decision", "reply", "codes"), BLOCKED)
def test_violating_drafts_are_blocked(decision, reply, codes):
    verdict = check(reply, decision)
    assert verdict.verdict == "blocked"
    assert set(codes) <= {v.code for v in verdict.violations}


def test_violation_message_gives_the_amount_and_the_limit():
    (violation,) = check("We've refunded $61 to your card.", A1_AUTO_60).violations
    assert re.search(r"\$61\.00, above the \$60\.00", violation.message)
    assert violation.evidence == "We've refunded $61 to your card."


@pytest.mark.parametrize("decision", [A1_ESCALATE, A1_AUTO_60, A1_REVIEW, A1_STOPPED, A2_AUTO, A2_ESCALATE, B1_ESCALATE,
                                      B1_AUTO, C1_ESCALATE, C1_AUTO, D1_ESCALATE, F2_ESCALATE, I1_AUTO_40, I1_SEVERE,
                                      I1_MET, I2_ESCALATE, I2_AUTO, J1_TAM, K2_ESCALATE, K2_AUTO_3,
                                      K2_AUTO_90_MINUTES])
def test_composed_reply_passes_its_own_decision(decision):
    reply = compose_reply(decision)
    assert check(reply, decision).verdict == "pass", reply
    assert not re.search(r"[{}\[\]]|\bNone\b(?! of)", reply)


def test_advice_on_what_the_customer_may_do_commits_to_nothing():
    decision = _decide("ops.licenses")
    advice = "If all of your licenses are in use, we suggest deactivating unused users, or we can proceed."
    assert check(advice, decision).passed
    assert not check("If you confirm, we will deactivate the unused users.", decision).passed


def test_the_composed_access_reply_states_the_hours_granted():
    assert "for 3 hours" in compose_reply(K2_AUTO_3)
    assert "for 1.5 hours" in compose_reply(K2_AUTO_90_MINUTES)
