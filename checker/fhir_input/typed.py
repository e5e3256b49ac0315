"""Typed decoding of bulk NDJSON lines: only what extraction reads, in small msgspec structures.

A bulk export repeats one shape millions of times: a MedicationRequest with an id, a status, an
intent, a subject, a date, a requester, a medication, a dosage and a dispense request. Such a line
is decoded into :class:`MedicationRequestLine` instead of a dict: strings are decoded, and the
medication, dosage and dispense elements are kept as raw JSON text (``msgspec.Raw``), which is
the key under which assembly shares their extraction (one parse per distinct text, not per line).

The typed path gives exactly what the dict path gives, or is not taken: :func:`decode_line`
refuses (returns ``None``, the line is then read as a dict) any line with an element the structure
does not name, a value of another type (``null`` included, except in the raw elements), an
escape (``\\``), or a key written twice (found as the dict path finds it: colons of the text
against colons of the re-encoded value, see :func:`~checker.fhir_input.decoding.may_have_duplicate_keys`).
The raw elements are checked at first sight by the dict path's own parser and repeated-key test
(:func:`checked`): a text that fails them sends its line back to the dict path.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
import orjson
from msgspec import UNSET, Raw, UnsetType

from checker.fhir_input.decoding import may_have_duplicate_keys


class Reference(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A FHIR Reference written with these elements only."""

    reference: str | UnsetType = UNSET
    display: str | UnsetType = UNSET
    type: str | UnsetType = UNSET


class MedicationRequestLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The elements of a bulk MedicationRequest line that extraction reads; any other refuses the line."""

    resourceType: Literal["MedicationRequest"]  # FHIR element names, as written in the JSON
    id: str | UnsetType = UNSET
    status: str | UnsetType = UNSET
    intent: str | UnsetType = UNSET
    subject: Reference | UnsetType = UNSET
    authoredOn: str | UnsetType = UNSET
    requester: Reference | UnsetType = UNSET
    medicationCodeableConcept: Raw | UnsetType = UNSET
    dosageInstruction: Raw | UnsetType = UNSET
    dispenseRequest: Raw | UnsetType = UNSET


class PatientLine(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A bulk Patient line with only the elements extraction reads; any other refuses the line."""

    resourceType: Literal["Patient"]
    id: str | UnsetType = UNSET
    gender: str | UnsetType = UNSET
    birthDate: str | UnsetType = UNSET


_DECODER = msgspec.json.Decoder(MedicationRequestLine)
PATIENT_DECODER = msgspec.json.Decoder(PatientLine)
_ENCODER = msgspec.json.Encoder()


def decode_line(line: bytes) -> MedicationRequestLine | None:
    """``line`` decoded typed, or ``None`` when it must be read as a dict (see module docstring)."""
    if b"\\" in line or line.find(b'"MedicationRequest"', 0, 80) < 0:  # an escape; another type, surely
        return None
    try:
        typed = _DECODER.decode(line)
    except msgspec.DecodeError:  # also msgspec.ValidationError: another shape, type or element
        return None
    encoded = _ENCODER.encode(typed)
    # With no backslash in the line, the re-encoded structure is the line without its blank space
    # (strings and raw elements come out as written): the same length proves that no member was
    # dropped; otherwise colons are compared, as the dict path does.
    if len(encoded) != len(line) and line.count(b":") != encoded.count(b":"):  # a key written twice
        return None
    return typed


def decode_run(lines: list[bytes], start: int, end: int, decoder: msgspec.json.Decoder[Any] = _DECODER
               ) -> tuple[int, list[Any] | None]:
    """``(stop, run)``: the lines ``lines[start:stop]`` decode into the structure and ``lines[stop]``
    does not (when ``stop < end``); ``run`` is their structures, or ``None`` when they are not all
    what :func:`decode_line` would give (then read them one by one). A run of lines costs one call
    per line, and the checks are made for the run at once. ``decoder``: that of
    :class:`MedicationRequestLine` or of :class:`PatientLine`.

    The caller has found no backslash in the lines (:func:`decode_line`'s first condition). The
    repeated-key test is :func:`decode_line`'s, summed over the run: for each line the re-encoded
    structure is never longer than the line and never has more colons (it is the line without its
    blank space and without the members a repeated key dropped), so equal sums prove every line
    equal, which is what :func:`decode_line` asks of each (same length, else same colons).
    """
    decoded: list[Any] = []
    append = decoded.append
    decode = decoder.decode
    try:
        for line in lines[start:end]:
            append(decode(line))
    except msgspec.DecodeError:  # also ValidationError: this line is read on its own
        pass
    stop = start + len(decoded)
    if not decoded:
        return stop, decoded
    run = lines[start:stop]
    encoded = _ENCODER.encode_lines(decoded)  # a newline after each
    if len(encoded) == sum(map(len, run)) + len(run) or encoded.count(b":") == b"".join(run).count(b":"):
        return stop, decoded
    return stop, None


FAILED: Any = object()
"""What :func:`checked` returns for a text the dict path would refuse."""


def checked(text: bytes) -> Any:
    """The JSON value of a raw element as the dict path reads it, or :data:`FAILED` when that parser
    refuses it or a key repeats in it (the line then goes to the dict path, which says why)."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return FAILED
    if may_have_duplicate_keys(text, value):
        return FAILED
    return value


__all__ = ["FAILED", "UNSET", "MedicationRequestLine", "Reference", "checked", "decode_line", "decode_run"]
