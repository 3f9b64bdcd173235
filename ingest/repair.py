r"""Text repair applied to every document before it is parsed.

Documents exported from word processors and wikis arrive with two recurring defects: UTF-8 read
as Windows-1252 ("â€”" for an em dash) and Markdown escapes left in plain text (`\$150.00`, an
inline-math `$\leq 2$`). Both are repaired here so that the text an agent reads, the lint and the
guard's threshold cross-check all see what the author meant. Nothing else is changed.
"""

from __future__ import annotations

import re

_MOJIBAKE_RUN = re.compile("""
    [\u00c0-\u00ff]                                  # a UTF-8 lead byte read as Latin-1: "â" of "â€”"
    [\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]+
                                                     # its continuation bytes as cp1252 shows them: "€”"
""", re.X)
_ESCAPED_PUNCT = re.compile(r"""
    \\ ([$%#&_*\[\]()<>])                # a Markdown escape in plain text: "\$150.00" → "$150.00"
""", re.X)
_INLINE_MATH = re.compile(r"""
    \$ \s* \\(leq|geq|le|ge|lt|gt|times) \s* ([\d.,]+) \s* \$   # inline LaTeX: "$\leq 2$" → "≤ 2"
""", re.X)
_MATH_SYMBOLS = {"leq": "≤", "le": "≤", "geq": "≥", "ge": "≥", "lt": "<", "gt": ">", "times": "×"}


def _fix_mojibake(match: re.Match[str]) -> str:
    run = match.group(0)
    try:
        return run.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return run


def repair(text: str) -> str:
    """Return `text` with mis-decoded UTF-8 and stray Markdown/LaTeX escapes repaired."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    text = _MOJIBAKE_RUN.sub(_fix_mojibake, text)
    text = _INLINE_MATH.sub(lambda m: f"{_MATH_SYMBOLS[m.group(1)]} {m.group(2)}", text)
    return _ESCAPED_PUNCT.sub(r"\1", text)
