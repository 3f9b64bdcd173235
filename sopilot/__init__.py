"""sopilot: a support copilot that retrieves the SOP for a ticket, drafts the reply, and guards it."""

__version__ = "0.1.0"
