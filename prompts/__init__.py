"""Versioned prompt templates (YAML beside this file), validated and rendered with explicit variables."""
