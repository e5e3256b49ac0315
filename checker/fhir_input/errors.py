"""Input errors as message codes with parameters (catalogue table ``input_error``)."""

from __future__ import annotations

from checker.findings import InputError, Message, Param


def _err(where: str, code: str, resource_type: str | None = None, *extra: Message, **params: Param) -> InputError:
    """An input error as a code with parameters (catalogue table ``input_error``), worded in English
    until a report words it in its language."""
    return InputError.coded(where, Message(code, params, extra), resource_type)


class InputNotFound(FileNotFoundError):
    """An input path that names nothing; ``code`` says so as a message code (table ``input_error``)."""

    def __init__(self, code: Message) -> None:
        super().__init__(code.text("en", "input_error"))
        self.code = code

    def __reduce__(self) -> tuple[type[InputNotFound], tuple[Message]]:
        """Rebuilt from its code (raised in an audit's worker process, reported by the main one)."""
        return type(self), (self.code,)
