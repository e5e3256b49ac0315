"""Plain text from reStructuredText-flavoured docstrings (for ``pertinence explain`` in a terminal)."""

from __future__ import annotations

import re

_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_LINK = re.compile(r"`([^`<]+?)\s*<([^>]+)>`__?")
_LITERAL = re.compile(r"``(.+?)``")
_STRONG = re.compile(r"\*\*(.+?)\*\*")
_EMPH = re.compile(r"(?<![\w*])\*(?!\s)([^*]+?)\*(?![\w*])")
_INTERPRETED = re.compile(r"`([^`]+)`_?")
_DIRECTIVE = re.compile(r"^\s*\.\. [\w-]+::.*$", re.M)


def plain_text(doc: str) -> str:
    """``doc`` without reST markup: roles, literals, links (``text (url)``), emphasis, directives,
    and ``::`` before literal blocks become plain words."""
    text = _DIRECTIVE.sub("", doc)
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1] if m.group(1).startswith("~") else m.group(1), text)
    text = _LINK.sub(r"\1 (\2)", text)
    text = _LITERAL.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    text = _EMPH.sub(r"\1", text)
    text = _INTERPRETED.sub(r"\1", text)
    text = re.sub(r"\s*::$", ":", text, flags=re.M)
    return text.strip("\n")
