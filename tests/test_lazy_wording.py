"""Findings are worded when an output reads them, not when a rule makes them: the words are the
same as eager wording, in both languages, on every sample."""

from __future__ import annotations

import pickle

import pytest

from checker import check
from checker.findings import (
    Finding,
    Message,
    Report,
    Severity,
    Source,
    Word,
    Words,
    forget_wording,
)
from checker.formats import render
from tests.conftest import SAMPLES

AS_OF = "2026-01-15"


def _eager(m: Message, lang: str, which: str) -> str:
    """The wording computed from the message: what a finding held before wording was deferred."""
    return m.summary(lang) if which == "summary" else m.detail(lang)


@pytest.fixture
def fills(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every catalogue message worded (``Message._fill`` calls) while the test runs."""
    calls: list[str] = []
    real = Message._fill
    forget_wording()  # texts remembered by earlier tests would be taken without wording them

    def counted(self: Message, lang: str, table: str, suffix: str = "") -> str:
        calls.append(f"{table}.{self.code}{suffix}")
        return real(self, lang, table, suffix)

    monkeypatch.setattr(Message, "_fill", counted)
    return calls


def test_a_check_words_no_finding_until_an_output_reads_it(fills: list[str]) -> None:
    report = check(str(SAMPLES / "rules" / "IX001"), as_of=AS_OF)
    assert report.findings and all(f.message is not None for f in report.findings)
    assert fills == [], f"worded while checking: {fills[:5]}"
    first = report.findings[0]
    summary = first.summary
    assert fills, "reading the summary words it"
    assert first.summary is summary  # remembered by the finding
    assert first.to_dict()["summary"] == summary


def test_words_read_later_are_the_eager_words_in_both_languages() -> None:
    for lang in ("fr", "en"):
        report = check(str(SAMPLES), as_of=AS_OF, lang=lang)
        worded = [f for f in report.findings if f.message is not None]
        assert len(worded) > 100
        for f in worded:
            assert f.message is not None
            assert f.summary == _eager(f.message, lang, "summary"), f.rule
            assert f.detail == _eager(f.message, lang, "detail"), f.rule
            other = "en" if lang == "fr" else "fr"
            again = f.worded(other)
            assert (again.summary, again.detail, again.lang) == (
                _eager(f.message, other, "summary"), _eager(f.message, other, "detail"), other)


def test_a_finding_keeps_its_words_when_copied_or_pickled() -> None:
    m = Message("IX001", {"level": Word("ix_level", "CI"), "first": "a", "second": "b", "label_a": "A",
                          "label_b": "B", "themes": Words("ix_theme", ()), "conduct": Word("ix_conduct", "CI")})
    f = Finding.worded_from(m, "fr", rule="IX001", category="interaction", severity=Severity.CRITICAL,
                            source=Source("ANSM"), patient="Patient/p", implicated=("MedicationRequest/1",))
    clone = pickle.loads(pickle.dumps(f))
    assert clone == f and clone.summary == _eager(m, "fr", "summary") and clone.detail == _eager(m, "fr", "detail")
    prose = Finding("R", "interaction", Severity.INFO, "s", "d", Source("x"), None, ("MedicationRequest/1",))
    assert prose.worded("en") is prose and prose.summary == "s"
    with pytest.raises(ValueError):
        Finding("R", "interaction", Severity.INFO, "x" * 141, "d", Source("x"), None, ())


def test_rendered_reports_are_the_same_whatever_is_read_first() -> None:
    """Rendering after reading some findings gives the bytes of rendering them unread."""
    report = check(str(SAMPLES / "rules"), as_of=AS_OF)
    cold = render(report, "json")
    again = check(str(SAMPLES / "rules"), as_of=AS_OF)
    for f in again.findings[::3]:
        _ = f.detail
    assert render(again, "json") == cold
    assert isinstance(again, Report)
