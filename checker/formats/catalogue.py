"""The formatters' view of the one wording catalogue (:mod:`checker.wording`); see docs/messages.md."""

from checker.wording import LANGS, amounts, catalogue, day, keys, money, msg, number, percent, table, word

__all__ = ["LANGS", "amounts", "catalogue", "day", "keys", "money", "msg", "number", "percent", "table", "word"]
