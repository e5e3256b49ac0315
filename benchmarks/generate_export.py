"""Generate a synthetic FHIR Bulk Data export (NDJSON) of French prescriptions, deterministically.

Default: 1,000,000 MedicationRequests over 100,000 patients (about 10 lines each), prescribed by
2,000 practitioners, with a realistic mix of clean treatments and interacting combinations, using
real French drug codes (CIP13 from the BDPM, January 2026 files) and their specialty names so that
drug identification works. Some lines are written as text only (DCI), a few are malformed on
purpose (rejected with an error, never a crash).

    python benchmarks/generate_export.py OUT_DIR [--patients 100000] [--per-patient 10] [--seed 7] [--gzip]
"""

from __future__ import annotations

import argparse
import gzip
import random
from datetime import date, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

CIP13 = "http://data.esante.gouv.fr/ansm/medicament/codeCIP13"

# (CIP13, BDPM specialty name) — facts from the BDPM (Licence Ouverte, ANSM/HAS/UNCAM), 2026-01.
DRUGS: dict[str, tuple[str, str]] = {
    "atorvastatine_g": ("3400930183052", "ATORVASTATINE BIOGARAN 20 mg, comprimé pelliculé"),
    "tahor": ("3400934306815", "TAHOR 20 mg, comprimé pelliculé"),
    "crestor": ("3400939169460", "CRESTOR 10 mg, comprimé pelliculé"),
    "omeprazole_g": ("3400930168387", "OMEPRAZOLE BIOGARAN 20 mg, gélule gastro-résistante"),
    "inexium": ("3400935533203", "INEXIUM 20 mg, comprimé gastro-résistant"),
    "pantoprazole_g": ("3400939213095", "PANTOPRAZOLE BIOGARAN 40 mg, comprimé gastro-résistant"),
    "amlodipine_g": ("3400930117163", "AMLODIPINE BIOGARAN 5 mg, gélule"),
    "losartan_g": ("3400938966527", "LOSARTAN BIOGARAN 50 mg, comprimé pelliculé sécable"),
    "furosemide_g": ("3400930038017", "FUROSEMIDE BIOGARAN 40 mg, comprimé sécable"),
    "spironolactone_g": ("3400934850738", "SPIRONOLACTONE BIOGARAN 25 mg, comprimé sécable"),
    "kaleorid": ("3400933217334", "KALEORID LP 600 mg, comprimé à libération prolongée"),
    "kardegic": ("3400934744198", "KARDEGIC 75 mg, poudre pour solution buvable en sachet-dose"),
    "plavix": ("3400934794636", "PLAVIX 75 mg, comprimé pelliculé"),
    "clopidogrel_g": ("3400930224816", "CLOPIDOGREL BIOGARAN 75 mg, comprimé pelliculé"),
    "previscan": ("3400933484132", "PREVISCAN 20 mg, comprimé quadrisécable"),
    "eliquis": ("3400926784102", "ELIQUIS 5 mg, comprimé pelliculé"),
    "xarelto": ("3400921923056", "XARELTO 20 mg, comprimé pelliculé"),
    "ibuprofene_g": ("3400937656313", "IBUPROFENE BIOGARAN 400 mg, comprimé pelliculé"),
    "advil": ("3400932959358", "ADVIL 200 mg, comprimé enrobé"),
    "clarithromycine_g": ("3400938491500", "CLARITHROMYCINE BIOGARAN 500 mg, comprimé pelliculé"),
    "augmentin": ("3400934450853", "AUGMENTIN 1 g/125 mg, poudre pour suspension buvable en sachet-dose (rapport amoxicilline/acide clavulanique : 8/1)"),
    "amoxiclav_g": ("3400935334879", "AMOXICILLINE/ACIDE CLAVULANIQUE BIOGARAN 1 g/125 mg, poudre pour suspension buvable en sachet-dose"),
    "ciflox": ("3400932981359", "CIFLOX 500 mg, comprimé pelliculé sécable"),
    "ciprofloxacine_g": ("3400936822306", "CIPROFLOXACINE ARROW 500 mg, comprimé pelliculé sécable"),
    "levofloxacine_g": ("3400939584133", "LEVOFLOXACINE BIOGARAN 500 mg, comprimé pelliculé sécable"),
    "orelox": ("3400933314248", "ORELOX 100 mg, comprimé pelliculé"),
    "cefpodoxime_g": ("3400938014273", "CEFPODOXIME BIOGARAN 100 mg, comprimé pelliculé"),
    "bactrim": ("3400932197040", "BACTRIM FORTE, comprimé sécable"),
    "zolpidem_g": ("3400936102712", "ZOLPIDEM BIOGARAN 10 mg, comprimé pelliculé sécable"),
    "stilnox": ("3400933903619", "STILNOX 10 mg, comprimé pelliculé sécable"),
    "imovane": ("3400932849895", "IMOVANE 7,5 mg, comprimé pelliculé sécable"),
    "xanax": ("3400932644490", "XANAX 0,25 mg, comprimé sécable"),
    "alprazolam_g": ("3400936429116", "ALPRAZOLAM BIOGARAN 0,25 mg, comprimé sécable"),
    "lexomil": ("3400931742845", "LEXOMIL 6 mg, comprimé quadrisécable"),
    "seresta": ("3400935887559", "SERESTA 10 mg, comprimé"),
    "valium": ("3400931112723", "VALIUM 10 mg, comprimé sécable"),
    "paroxetine_g": ("3400936772465", "PAROXETINE BIOGARAN 20 mg, comprimé pelliculé sécable"),
    "deroxat": ("3400933525385", "DEROXAT 20 mg, comprimé pelliculé sécable"),
    "sertraline_g": ("3400936945524", "SERTRALINE BIOGARAN 50 mg, gélule"),
    "citalopram_g": ("3400922033167", "CITALOPRAM BIOGARAN 20 mg, comprimé pelliculé sécable"),
    "lantus": ("3400935946492", "LANTUS 100 Unités/ml, solution injectable en flacon"),
    "abasaglar": ("3400930016169", "ABASAGLAR 100 unités/ml, solution injectable en cartouche"),
    "toujeo": ("3400930016671", "TOUJEO 300 unités/ml SoloStar, solution injectable en stylo prérempli"),
    "metformine_g": ("3400930118801", "METFORMINE BIOGARAN 1000 mg, comprimé pelliculé"),
    "doliprane": ("3400941533969", "DOLIPRANE 1000 mg, gélule"),
    "paracetamol_g": ("3400930036228", "PARACETAMOL BIOGARAN 1 g, comprimé"),
    "tramadol_g": ("3400930127209", "TRAMADOL BIOGARAN 50 mg, gélule"),
    "levothyrox": ("3400930065891", "LEVOTHYROX 100 microgrammes, comprimé sécable"),
    "digoxine": ("3400933466091", "DIGOXINE NATIVELLE 0,25 mg, comprimé"),
    "amiodarone_g": ("3400930008386", "AMIODARONE BIOGARAN 200 mg, comprimé sécable"),
    "allopurinol_g": ("3400936239777", "ALLOPURINOL BIOGARAN 100 mg, comprimé"),
    "colchicine": ("3400930040935", "COLCHICINE OPOCALCIUM 1 mg, comprimé sécable"),
    "methotrexate": ("3400930154137", "METHOTREXATE ACCORD 10 mg, comprimé"),
}

# Text-only lines (DCI as a prescriber may write them).
TEXT_ONLY = ["paracétamol 1 g comprimé", "amoxicilline 1 g comprimé", "atorvastatine 20 mg comprimé",
             "oméprazole 20 mg gélule", "metformine 850 mg comprimé", "ramipril 5 mg comprimé"]

# Chronic background treatments (clean on their own).
CHRONIC = [["atorvastatine_g", "amlodipine_g"], ["tahor", "losartan_g"], ["crestor", "kardegic"],
           ["metformine_g", "atorvastatine_g", "kardegic"], ["levothyrox"], ["omeprazole_g"], ["inexium"],
           ["pantoprazole_g", "clopidogrel_g"], ["plavix", "tahor"], ["lantus", "metformine_g"],
           ["abasaglar", "metformine_g"], ["toujeo"], ["sertraline_g"], ["deroxat"], ["citalopram_g"],
           ["furosemide_g", "kaleorid"], ["eliquis"], ["xarelto", "amlodipine_g"], ["allopurinol_g"]]
# Acute episodes (short courses).
ACUTE = [["augmentin"], ["amoxiclav_g"], ["ciflox"], ["ciprofloxacine_g"], ["levofloxacine_g"], ["orelox"],
         ["cefpodoxime_g"], ["doliprane"], ["paracetamol_g"], ["advil"], ["ibuprofene_g"], ["tramadol_g"],
         ["zolpidem_g"], ["stilnox"], ["imovane"], ["xanax"], ["alprazolam_g"], ["lexomil"], ["seresta"],
         ["valium"], ["bactrim"], ["clarithromycine_g"]]
# Combinations that interact (ANSM thesaurus pairs) — a minority of patients.
INTERACTING = [["previscan", "ibuprofene_g"], ["colchicine", "clarithromycine_g"], ["spironolactone_g", "kaleorid"],
               ["methotrexate", "bactrim"], ["tahor", "clarithromycine_g"], ["amiodarone_g", "digoxine"],
               ["paroxetine_g", "tramadol_g"], ["eliquis", "kardegic", "advil"], ["xarelto", "clarithromycine_g"]]
HYPNOTICS = {"zolpidem_g", "stilnox", "imovane"}
ANXIOLYTICS = {"xanax", "alprazolam_g", "lexomil", "seresta", "valium"}

START = date(2025, 1, 1)


def _mr(rng: random.Random, mid: str, patient: str, prescriber: str, drug: str | None, text: str | None,
        day: date, days: int, status: str) -> dict[str, Any]:
    if drug is not None:
        cip, name = DRUGS[drug]
        med = {"coding": [{"system": CIP13, "code": cip, "display": name}], "text": name}
    else:
        med = {"text": text}
    per_day = rng.choice([1, 1, 1, 2, 3])
    label = (DRUGS[drug][1] if drug is not None else text or "").lower()
    unit = next((u for u in ("comprimé", "gélule", "sachet") if u in label), "dose")
    return {
        "resourceType": "MedicationRequest", "id": mid, "status": status, "intent": "order",
        "medicationCodeableConcept": med,
        "subject": {"reference": patient},
        "authoredOn": day.isoformat(),
        "requester": {"reference": prescriber},
        "dosageInstruction": [{
            "text": f"{per_day} prise(s) par jour pendant {days} jours",
            "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d",
                                  "boundsDuration": {"value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}}},
            "doseAndRate": [{"doseQuantity": {"value": 1, "unit": unit}}],
        }],
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}},
    }


def generate(out: Path, patients: int = 100_000, per_patient: int = 10, seed: int = 7, gz: bool = False,
             practitioners: int = 2000, file_lines: int = 100_000) -> dict[str, int]:
    """Write Patient, Practitioner and MedicationRequest NDJSON files; returns the counts written."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if gz else ".ndjson"

    def opener(name: str) -> IO[bytes]:
        path = out / f"{name}{suffix}"
        return gzip.open(path, "wb", compresslevel=3) if gz else path.open("wb")

    with opener("Practitioner.000") as f:
        for k in range(practitioners):
            f.write(orjson.dumps({"resourceType": "Practitioner", "id": f"pr{k:05d}",
                                  "name": [{"family": f"Médecin{k:05d}", "prefix": ["Dr"]}]}) + b"\n")
    counts = {"patients": 0, "medication_requests": 0, "malformed": 0, "practitioners": practitioners}
    target_total = patients * per_patient
    mr_file = None
    mr_index = mr_lines = 0
    with opener("Patient.000") as pf:
        for p in range(patients):
            pid = f"p{p:07d}"
            age = rng.choices([rng.randint(18, 44), rng.randint(45, 64), rng.randint(65, 74), rng.randint(75, 97)],
                              weights=[30, 30, 20, 20])[0]
            birth = date(2026 - age, rng.randint(1, 12), rng.randint(1, 28))
            pf.write(orjson.dumps({"resourceType": "Patient", "id": pid, "gender": rng.choice(["female", "male"]),
                                   "birthDate": birth.isoformat()}) + b"\n")
            counts["patients"] += 1
            # lines for this patient: keep the running total on target
            remaining_p = patients - p
            remaining = target_total - counts["medication_requests"]
            n = max(1, min(40, round(rng.gauss(remaining / remaining_p, 3)))) if remaining_p > 1 else max(1, remaining)
            main = f"Practitioner/pr{rng.randrange(practitioners):05d}"
            plan: list[tuple[str | None, str | None, int]] = []
            for drug in rng.choice(CHRONIC) + (rng.choice(CHRONIC) if age >= 65 else []):
                plan.append((drug, None, 90))
            if rng.random() < 0.12:
                plan += [(d, None, 30) for d in rng.choice(INTERACTING)]
            while len(plan) < n:
                r = rng.random()
                if r < 0.08:
                    plan.append((None, rng.choice(TEXT_ONLY), 30))
                else:
                    d = rng.choice(rng.choice(ACUTE))
                    days = rng.choice([28, 56, 84]) if d in HYPNOTICS | ANXIOLYTICS else rng.choice([5, 7, 10])
                    plan.append((d, None, days))
            plan = plan[:n]
            for j, (drug, text, days) in enumerate(plan):
                if mr_file is None or mr_lines >= file_lines:
                    if mr_file is not None:
                        mr_file.close()
                    mr_file = opener(f"MedicationRequest.{mr_index:03d}")
                    mr_index += 1
                    mr_lines = 0
                day = START + timedelta(days=rng.randrange(330))
                prescriber = main if rng.random() < 0.8 else f"Practitioner/pr{rng.randrange(practitioners):05d}"
                status = "active" if days >= 28 or rng.random() < 0.5 else "completed"
                res = _mr(rng, f"mr{p:07d}-{j:02d}", f"Patient/{pid}", prescriber, drug, text, day, days, status)
                if rng.random() < 0.0005:  # a malformed line: must be rejected, never crash the audit
                    res["dosageInstruction"] = "tous les jours"
                    counts["malformed"] += 1
                mr_file.write(orjson.dumps(res) + b"\n")
                mr_lines += 1
                counts["medication_requests"] += 1
    if mr_file is not None:
        mr_file.close()
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--per-patient", type=int, default=10)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--gzip", action="store_true")
    args = ap.parse_args()
    print(orjson.dumps(generate(args.out, args.patients, args.per_patient, args.seed, args.gzip)).decode())


if __name__ == "__main__":
    main()
