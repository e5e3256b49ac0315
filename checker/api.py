"""The library API: :func:`check` turns FHIR inputs into a :class:`~checker.findings.Report`.

Pure: no printing, no global state besides the once-loaded referentials; safe to call from
several threads at once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import checker.rules  # noqa: F401  (registers every rule family, hence every referential loader)
from checker import fhir_input
from checker.drugs import identify
from checker.findings import VERSION, Finding, InputCounts, InputError, Message, Report, Severity, in_input_order
from checker.findings import rule_location
from checker.memo import BULK_RESOURCES, forget_request_words, relaxed_gc
from checker.model import MedicationIdentity, MedicationOrder, PatientRecord
from checker.referentials import Referentials, default_referentials
from checker.registry import Dispatch, Rule, RuleCall, RunSettings, dispatch_of, select_rules

JURISDICTIONS = ("fr", "ma")


class CheckCancelled(Exception):
    """The caller's ``should_stop`` said stop (e.g. a CDS request past its deadline): no report."""


def check(
    inputs: Any,
    *,
    as_of: date | str | None = None,
    jurisdiction: str = "fr",
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    min_severity: Severity | str | None = None,
    lang: str = "fr",
    strict: bool = False,
    refs: Referentials | None = None,
    severity_overrides: dict[str, str] | None = None,
    max_decompressed: int | None = None,
    max_expansion: float | None = None,
) -> Report:
    """Check prescriptions and return a report.

    ``inputs``: a path (file or directory, searched recursively), ``"-"`` for stdin, a FHIR
    resource as a dict, JSON text or a fhir.resources model, or a list of any of these.
    ``as_of``: the day treated as "now" (open-ended orders, ages); today by default.
    ``strict``: validate every resource with fhir.resources and reject the invalid ones.
    ``max_decompressed``: bytes one compressed input may expand to (default
    :data:`checker.fhir_input.MAX_DECOMPRESSED`, 2 GiB); past it the input is refused with an error.
    ``max_expansion``: the same for an expansion ratio (default :data:`~checker.fhir_input.MAX_EXPANSION`).
    """
    run = start_run(as_of, refs, max_decompressed, max_expansion)
    day, refs = run.day, run.refs
    ingestion = fhir_input.read(inputs, strict=strict, as_of=day, max_decompressed=run.max_decompressed,
                                max_expansion=run.max_expansion)
    with relaxed_gc() if ingestion.counts.resources >= BULK_RESOURCES else contextlib.nullcontext():
        report = check_records(
            ingestion.records,
            counts=ingestion.counts,
            errors=ingestion.errors,
            as_of=day,
            jurisdiction=jurisdiction,
            select=select,
            ignore=ignore,
            min_severity=min_severity,
            lang=lang,
            refs=refs,
            severity_overrides=severity_overrides,
        )
    report.resource_urls = ingestion.urls
    return report


@dataclass(frozen=True, slots=True)
class RunStart:
    """What every way of running a check settles before reading: the day treated as "now", the
    verified referentials and the decompression limits."""

    day: date
    refs: Referentials
    max_decompressed: int
    max_expansion: float


def start_run(as_of: date | str | None = None, refs: Referentials | None = None,
              max_decompressed: int | None = None, max_expansion: float | None = None) -> RunStart:
    """The start shared by :func:`check`, ``check_inputs`` (progress bar) and the sharded ``check``:
    ``as_of`` parsed (today by default), the referentials verified (an altered one stops the run
    before anything is read) and the limits defaulted (:data:`checker.fhir_input.MAX_DECOMPRESSED`,
    :data:`~checker.fhir_input.MAX_EXPANSION`)."""
    day = parse_day(as_of) if as_of is not None else date.today()
    refs = refs or default_referentials()
    refs.verify_all()
    return RunStart(day, refs,
                    fhir_input.MAX_DECOMPRESSED if max_decompressed is None else max_decompressed,
                    fhir_input.MAX_EXPANSION if max_expansion is None else max_expansion)


def check_records(
    records: Sequence[PatientRecord],
    *,
    counts: InputCounts | None = None,
    errors: Sequence[InputError] = (),
    as_of: date | str | None = None,
    jurisdiction: str = "fr",
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    min_severity: Severity | str | None = None,
    lang: str = "fr",
    refs: Referentials | None = None,
    severity_overrides: dict[str, str] | None = None,
    rules: Sequence[Rule] | None = None,
    should_stop: Callable[[], bool] | None = None,
    focus: Iterable[str] | None = None,
) -> Report:
    """Run the rules on already assembled patient records (CDS service, audit shards).

    ``should_stop``: asked before each rule on each record; when it answers True the run ends with
    :class:`CheckCancelled` (a request whose deadline has passed stops working).
    ``focus``: the orders (references) whose findings are wanted, e.g. a CDS request's drafts: the
    findings implicating one of them are the same as without it, others may be left out."""
    if jurisdiction not in JURISDICTIONS:
        raise ValueError(f"unknown jurisdiction {jurisdiction!r}: use one of {', '.join(JURISDICTIONS)}")
    if lang not in ("fr", "en"):
        raise ValueError(f"unknown language {lang!r}: use fr or en")
    refs = refs or default_referentials()
    refs.verify_all()  # once per Referentials (see Referentials.verify_all)
    day = parse_day(as_of) if as_of is not None else date.today()
    overrides = tuple((k.upper(), Severity.parse(v)) for k, v in (severity_overrides or {}).items())
    settings = RunSettings(as_of=day, jurisdiction=jurisdiction, lang=lang, severity_overrides=overrides,
                           focus=frozenset(focus) if focus is not None else None)
    if isinstance(select, str):
        select = select.split(",")
    if isinstance(ignore, str):
        ignore = ignore.split(",")
    chosen = list(rules) if rules is not None else select_rules(select, ignore)
    floor = Severity.parse(min_severity) if min_severity is not None else None

    try:
        findings, errors = _run_rules(records, chosen, settings, refs, list(errors), should_stop)
    finally:  # the words of this request (and of the last one's output) are not kept past the check
        forget_request_words()
    findings = _apply_overrides(findings, dict(overrides))
    if floor is not None:
        findings = [f for f in findings if f.severity.rank >= floor.rank]
    used = sorted({ref for r in chosen for ref in r.referentials})
    return Report(
        checker_name="pertinence",
        checker_version=VERSION,
        referentials=refs.info(used),
        as_of=day.isoformat(),
        jurisdiction=jurisdiction,
        inputs=counts or InputCounts(),
        findings=_dedupe(findings),
        errors=in_input_order(e.worded(lang) for e in errors),
        lang=lang,
    )


def _run_rules(records: Sequence[PatientRecord], rules: Sequence[Rule], settings: RunSettings, refs: Referentials,
               errors: list[InputError], should_stop: Callable[[], bool] | None = None,
               ) -> tuple[list[Finding], list[InputError]]:
    """Identify the lines, then run every rule on every record that has one of its triggers (see
    :class:`~checker.registry.Trigger`; a failing rule becomes an error)."""
    identify_records(records, refs)
    findings: list[Finding] = []
    dispatch: Dispatch | None = None  # made with the first record (an empty run loads no referential)
    focus = settings.focus
    for record in records:
        if dispatch is None:
            dispatch = dispatch_of(r.trigger(refs) for r in rules)
        shared: dict[object, object] = {}  # what the rules on this record share (identified lines)
        fire = dispatch.firing_bits(record, focus)
        for i, r in enumerate(rules):
            if not fire >> i & 1:
                continue  # nothing in the record can make this rule fire
            if should_stop is not None and should_stop():
                raise CheckCancelled(f"stopped before rule {rule_location(r.id, record.ref)}")
            try:  # the findings of a rule that fails midway are dropped with it, as Rule.run does
                findings.extend(list(r.func(RuleCall(r, record, settings, refs, shared))) if should_stop is None
                                else _run_stoppable(r, RuleCall(r, record, settings, refs, shared), should_stop))
            except CheckCancelled:
                raise
            except Exception as exc:  # one faulty rule must not cost the other checks of the run
                errors.append(InputError.coded(rule_location(r.id, record.ref),
                                               Message("rule-failed", {"error": f"{type(exc).__name__}: {exc}"})))
    return findings, errors


def _run_stoppable(rule: Rule, call: RuleCall, should_stop: Callable[[], bool]) -> list[Finding]:
    """``rule.run``, asking ``should_stop`` every 64 findings (a rule with thousands of pairs stops too)."""
    out: list[Finding] = []
    for f in rule.func(call):
        out.append(f)
        if len(out) % 64 == 0 and should_stop():
            raise CheckCancelled(f"stopped during rule {rule.id}")
    return out


IDENTITIES_LIMIT = 20_000
"""Medications whose identification an :class:`Identities` keeps (emptied when full): far more than
the distinct medications of a bulk export, a bound on what a long run keeps alive."""


class Identities:
    """Identifications shared between the orders naming the same medication, in one call or across
    the chunks of one run (a sharded ``check``, an audit worker): identification depends only on what
    names the medication (code, ingredients, form) and on the referentials. Entries hold the named
    objects, so that an id is never reused under them. Bounded (:data:`IDENTITIES_LIMIT`)."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = IDENTITIES_LIMIT if limit is None else limit
        self.refs: Referentials | None = None
        self.by_object: dict[tuple[int, int, int], tuple[tuple[object, ...], MedicationIdentity]] = {}
        self.by_value: dict[tuple[object, ...], MedicationIdentity] = {}

    def of(self, order: MedicationOrder, refs: Referentials) -> MedicationIdentity:
        """The identification of ``order``'s medication."""
        if refs is not self.refs:
            self.by_object.clear()
            self.by_value.clear()
            self.refs = refs
        named = (order.medication, order.ingredients, order.medication_form)
        quick = (id(named[0]), id(named[1]), id(named[2]))
        hit = self.by_object.get(quick)
        if hit is not None:
            return hit[1]
        found = self.by_value.get(named)
        if found is None:
            found = identify(order, refs)
            if len(self.by_value) >= self.limit:
                self.by_value.clear()
            self.by_value[named] = found
        if len(self.by_object) >= self.limit:
            self.by_object.clear()
        self.by_object[quick] = (named, found)
        return found


def identify_records(records: Sequence[PatientRecord], refs: Referentials, shared: Identities | None = None) -> None:
    """Fill ``order.identity`` for every medication order not identified yet.

    Identification depends only on what names the medication (code, ingredients, form), so the
    result is shared between orders naming the same medication: bulk exports repeat them a lot, and
    reading shares one medication object between them (so the look-up is by identity; orders built
    otherwise are compared by value). ``shared``: identifications kept across calls of one run.
    """
    memo = shared if shared is not None else Identities()
    for record in records:
        for order in record.medication_orders:
            if order.identity is None:
                order.identity = memo.of(order, refs)


def parse_day(value: date | str) -> date:
    """``date`` or ISO ``YYYY-MM-DD`` text (a datetime or a datetime string gives its date)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text) if len(text) <= 10 else datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"not a date: {value!r} (expected YYYY-MM-DD)") from None


def _apply_overrides(findings: list[Finding], overrides: dict[str, Severity]) -> list[Finding]:
    if not overrides:
        return findings
    from dataclasses import replace

    return [replace(f, severity=overrides[f.rule]) if f.rule in overrides else f for f in findings]


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: dict[str, Finding] = {}
    for f in findings:
        seen.setdefault(f.fingerprint, f)
    return list(seen.values())
