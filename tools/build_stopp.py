"""Build ``referentials/iatrogenic/stopp-v2-subset.json`` from the coded STOPP/START v2 XML.

Run by a maintainer (never at run time)::

    python tools/build_stopp.py ../shared/data/stopp-start-v2/stoppstart_v2.xml

Keeps only the STOPP criteria the checker can evaluate from a prescription record: duplicate drug
classes (A3), renal thresholds on eGFR (E1–E6), drugs to avoid in older people whatever the context
(B10, C7, D14, J1, K1, K4), aspirin dose (C1), benzodiazepine duration (D5) and the list of
anticholinergic drugs (M). For each: the criterion id, its ATC codes (prefixes), thresholds and
the ICD-10 stages of chronic kidney disease it accepts instead of an eGFR. Descriptions are not
copied; the checker words its own messages.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # run from a checkout: import checker

import json
import sys
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as ET

KEEP = {"STOPP A3", "STOPP B10", "STOPP C1", "STOPP C7", "STOPP D5", "STOPP D14", "STOPP E1", "STOPP E2",
        "STOPP E3", "STOPP E4", "STOPP E5", "STOPP E6", "STOPP J1", "STOPP K1", "STOPP K4", "STOPP M"}


def _medicine(node: Any) -> dict[str, Any]:
    term = node.find("terminology")
    codes = [v.text.strip() for v in term.iter("value")] if term is not None else []
    out: dict[str, Any] = {"atc": codes, "negative": node.get("negative") == "true"}
    dose = node.find("dose")
    if dose is not None:
        out["dose"] = {"per": dose.get("interval"), "unit": dose.get("unit"),
                       "op": dose.find("values").get("operator"), "value": float(dose.find("values/value").text)}
    dur = node.find("duration")
    if dur is not None:
        out["duration"] = {"unit": dur.get("interval"), "op": dur.find("values").get("operator"),
                           "value": float(dur.find("values/value").text)}
    return out


def build(xml: Path) -> dict[str, Any]:
    root = ET.parse(xml).getroot()
    rules: dict[str, Any] = {}
    for r in root.findall("rule"):
        rid = r.get("id")
        if rid not in KEEP:
            continue
        iterations = []
        for it in r.findall("iteration"):
            medicines, egfr, ckd_icd10 = [], None, []
            for cond in it.findall("condition"):
                for ch in cond:
                    if ch.tag == "medicine":
                        medicines.append(_medicine(ch))
                    elif ch.tag == "measurement":
                        term = ch.find("terminology")
                        res = ch.find("result/values")
                        egfr = {"loinc": [v.text.strip() for v in term.iter("value")],
                                "op": res.get("operator"), "value": float(res.find("value").text)}
                    elif ch.tag == "episode":
                        term = ch.find("terminology")
                        if term is not None and term.get("name") == "icd10":
                            ckd_icd10 = [v.text.strip() for v in term.iter("value")]
            iterations.append({"medicines": medicines, "egfr": egfr, "ckd_icd10": ckd_icd10})
        rules[rid] = {"iterations": iterations}
    return {
        "format": 1,
        "source": {
            "label": "STOPP/START v2 (O'Mahony et al., Age Ageing 2015), coded by Huibers et al., Int J Med Inform 2019",
            "url": "https://github.com/MichielCM/stoppstart",
            "edition": "v2 (coded XML, commit 8fdc1ac)",
        },
        "rules": rules,
    }


def main(argv: list[str]) -> int:
    xml = Path(argv[1] if len(argv) > 1 else "../shared/data/stopp-start-v2/stoppstart_v2.xml")
    out = Path(argv[2] if len(argv) > 2 else "referentials/iatrogenic/stopp-v2-subset.json")
    data = build(xml)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{out}: {len(data['rules'])} criteria")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
