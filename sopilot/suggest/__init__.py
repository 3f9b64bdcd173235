"""The suggestion pipeline: retrieve, decide, draft (LLM or offline composer), guard, cite."""
