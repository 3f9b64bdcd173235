"""Offline evaluation: retrieval and guard metrics on labelled sets, as library functions."""
