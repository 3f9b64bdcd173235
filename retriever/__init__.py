"""Query → ranked SOP hits (hybrid dense + lexical)."""
