"""Retrospective audits on generated records: past prescriptions (drugs of many rules, durations,
statuses, bounds, eGFRs, pregnancies and ulcers with or without an end) checked again the next day,
six months and five years later say the same of every treatment that had ended; and data recorded
only after a treatment ended (an eGFR, a pregnancy, an ulcer, an allergy) changes nothing said of it."""

from __future__ import annotations

import copy
import random
from datetime import date, timedelta
from typing import Any

import pytest

from checker import check, fhir_input, periods
from checker.api import parse_day
from tests.test_facts_point_in_time import _moving_as_of_keeps_the_past, condition, egfr, med

DRUGS = ["Ibuprofène 400 mg comprimé", "Kétoprofène 100 mg gélule", "Warfarine 5 mg comprimé",
         "Rivaroxaban 20 mg comprimé", "Metformine 1000 mg comprimé", "Bromazépam 6 mg comprimé",
         "Zolpidem 10 mg comprimé", "Valproate de sodium 500 mg comprimé", "Méthotrexate 2,5 mg comprimé",
         "Digoxine 0,25 mg comprimé", "Oméprazole 20 mg gélule", "Clarithromycine 500 mg comprimé",
         "Simvastatine 40 mg comprimé", "Amiodarone 200 mg comprimé", "Tramadol 50 mg gélule",
         "Doliprane 1000 mg comprimé", "Kardegic 75 mg sachet", "Spironolactone 25 mg comprimé",
         "Ramipril 10 mg gélule", "Colchicine 1 mg comprimé", "Isotrétinoïne 20 mg capsule",
         "Hydroxyzine 25 mg comprimé", "Fluconazole 200 mg gélule"]
EARLY = "2025-12-02"


def _patient(rng: random.Random, pid: str) -> list[dict[str, Any]]:
    start = date(2024, 1, 1)

    def day() -> date:
        return start + timedelta(days=rng.randrange(0, 700))

    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "gender": rng.choice(["male", "female"]),
                                  "birthDate": f"{rng.choice([1948, 1950, 1958, 1961, 1985, 1995])}-06-15"}]
    for k in range(rng.randint(2, 7)):
        m = med(f"{pid}m{k}", rng.choice(DRUGS), day().isoformat(), freq=rng.choice([1, 2, 3]), dose=rng.choice([1, 2]),
                days=rng.choice([None, 5, 10, 30, 90]), status=rng.choice(["active", "completed", "stopped", "on-hold"]))
        if rng.random() < 0.2:
            m.pop("dispenseRequest", None)
            s = day()
            m["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {
                "start": s.isoformat(), "end": (s + timedelta(days=rng.randint(3, 60))).isoformat()}
        out.append(m)
    out += [egfr(f"{pid}e{k}", rng.choice([12, 25, 40, 55, 80]), day().isoformat()) for k in range(rng.randint(0, 3))]
    if rng.random() < 0.4:
        onset = day()
        end = onset + timedelta(days=rng.randint(30, 280)) if rng.random() < 0.6 else None
        out.append(condition(f"{pid}c", rng.choice(["Grossesse", "Ulcère gastrique", "Suspicion de grossesse"]),
                             onset=onset.isoformat(), abatement=end.isoformat() if end else None,
                             clinical="resolved" if end else "active"))
    for r in out[1:]:
        r["subject"] = {"reference": f"Patient/{pid}"}
    return out


def _bundle(seed: int, n: int) -> dict[str, Any]:
    rng = random.Random(seed)
    entries = [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r}
               for i in range(n) for r in _patient(rng, f"p{seed}x{i}")]
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("late", ["2025-12-03", "2026-06-02", "2030-12-02"])
def test_generated_past_prescriptions_say_the_same_at_any_later_as_of(tmp_path: Any, seed: int, late: str) -> None:
    import json

    path = tmp_path / "records.json"
    path.write_text(json.dumps(_bundle(seed, 40)), encoding="utf-8")
    _moving_as_of_keeps_the_past([str(path)], EARLY, late)


@pytest.mark.parametrize("seed", [1, 2])
def test_data_recorded_after_a_treatment_ended_changes_nothing_said_of_it(seed: int) -> None:
    data = _bundle(seed, 40)
    day = parse_day(EARLY)
    ended = {o.ref for rec in fhir_input.read(data, as_of=day).records for o in rec.medication_orders
             if (end := periods.treatment_period(o, day)[1]) is not None and end < day}
    later = copy.deepcopy(data)
    for pid in [e["resource"]["id"] for e in data["entry"] if e["resource"]["resourceType"] == "Patient"]:
        subject = {"reference": f"Patient/{pid}"}
        for r in (egfr(f"{pid}late", 10, EARLY), condition(f"{pid}lg", "Grossesse", onset=EARLY, recorded=EARLY),
                  condition(f"{pid}lu", "Ulcère gastrique", onset=EARLY, recorded=EARLY)):
            later["entry"].append({"fullUrl": f"urn:uuid:late-{r['id']}", "resource": {**r, "subject": subject}})
        allergy = {"resourceType": "AllergyIntolerance", "id": f"{pid}la", "recordedDate": EARLY,
                   "onsetDateTime": EARLY, "code": {"text": "AINS"}, "patient": subject}
        later["entry"].append({"fullUrl": f"urn:uuid:late-{pid}la", "resource": allergy})

    def past(d: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in f.to_dict().items() if k != "id"} for f in check(d, as_of="2026-06-02").findings
                if f.implicated and all(ref in ended for ref in f.implicated)]

    before, after = past(data), past(later)
    assert before, "the generated records hold past findings"
    assert [f for f in before if f not in after] == [] and [f for f in after if f not in before] == []
