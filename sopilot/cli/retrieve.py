"""`sopilot retrieve`: ranked SOPs for a query or a pasted ticket, with whether the best one is a match."""

from __future__ import annotations

import argparse
import json
import sys

from sopilot.core.errors import LLMError, UserError
from sopilot.core.settings import Settings

TRANSLATE_PROMPT = ("Translate the customer's support message into English. Keep product names, amounts, ids "
                    "and dates exactly as written. Answer with the translation only.")


def translator(settings: Settings):
    """A `retriever.hybrid.Translate` through the configured LLM, or None when no LLM is configured.

    A failed call leaves the ticket untranslated (it is still searched in its own words).
    """
    from sopilot.suggest.llm import from_settings

    client = from_settings(settings)
    if client is None:
        return None

    def translate(text: str, language: str) -> str | None:
        try:
            return client.complete([("system", f"{TRANSLATE_PROMPT} (The message is in '{language}'.)"),
                                    ("human", text)])
        except LLMError:
            return None

    return translate


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")


def cmd_retrieve(args: argparse.Namespace, settings: Settings) -> int:
    """Print the hits (and `matched`, `match_probability`, `language`, `read_as`) for a query or a batch."""
    from sopilot.core.jsonl import read_jsonl
    from sopilot.retriever.hybrid import load

    if args.batch is None and not args.query:
        raise UserError("give a QUERY or --batch FILE.jsonl")
    retriever = load(settings)
    translate = translator(settings)
    if args.batch is not None:
        for number, row in read_jsonl(args.batch, "query file", example='{"query": "customer charged twice"}'):
            query = row.get("query")
            if not isinstance(query, str) or not query.strip():
                raise UserError(f"{args.batch}:{number}: missing \"query\" string")
            found = retriever.retrieve(query, k=args.k, category=row.get("category", args.category),
                                       translate=translate)
            _print_json(found.to_json())
        return 0
    found = retriever.retrieve(args.query, k=args.k, category=args.category, translate=translate)
    if args.json:
        _print_json(found.to_json())
        return 0
    verdict = "matched" if found.matched else "no SOP matched"
    print(f"{verdict} (probability {found.match_probability:.2f}); language {found.language}; "
          f"read as {found.form}: {found.read_as[:120]!r}", file=sys.stderr)
    for rank, hit in enumerate(found.hits, start=1):
        print(f"{rank}. {hit.sop_id:20} {hit.score:.3f}  p={hit.match_probability:.2f}  {hit.title} — {hit.category} "
              f"[{hit.section}] {hit.source}:{hit.line_start}-{hit.line_end}")
    return 0
