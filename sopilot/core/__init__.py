"""The foundation: errors, settings, JSON Lines, money, the SOP types and the stops list.

Nothing here imports any other part of sopilot; every other package may import from here.
"""
