"""sopilot beside the helpdesk: signed webhooks, and the Request Tracker 5 connector.

The connector never imports the service: the service hands it a `Copilot` (suggest, feedback),
so a helpdesk event becomes exactly what an agent's own request would: a recorded suggestion.
"""
