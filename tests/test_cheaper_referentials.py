"""The economic referentials: CNOPS 2014 price list, MTE substances, biosimilar groups, strategies."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from checker.referentials import ReferentialError, default_referentials, load_manifest
from checker.referentials.economics import load_biosimilars, load_mte, load_strategies
from checker.referentials.prices import parse_cnops
from tests.conftest import REPO

HEADER = b"CODE,NOM,DCI1,DOSAGE1,UNITE_DOSAGE1,FORME,PRESENTATION,PPV,PH,PRIX_BR,PRINCEPS_GENERIQUE,TAUX_REMBOURSEMENT\n"


def test_cnops_parses_rows_and_artefacts() -> None:
    data = HEADER + "6118000140719,TORVA,ATORVASTATINE,20,MG,COMPRIME ENROBE,1 BOITE 30 COMPRIME,224.00,0.00,224.00,G,0.70\n".encode("latin-1")
    (row,) = parse_cnops(data, "x.csv")
    assert row.code == "6118000140719" and row.generic and row.ppv == 224.0
    assert row.ph is None  # 0.00 is the upstream conversion of a missing PH
    assert row.reimbursement_rate == pytest.approx(0.70)
    assert row.line == 2


@pytest.mark.parametrize(
    "line, message",
    [
        (b"61180,TORVA,ATORVASTATINE,20,MG,CP,1 BOITE 30 COMPRIME,224.00,1.00,224.00,G,0.70\n", "CODE"),
        (b"6118000140719,TORVA,ATORVASTATINE,20,MG,CP,1 BOITE 30 COMPRIME,abc,1.00,224.00,G,0.70\n", "PPV"),
        (b"6118000140719,TORVA,ATORVASTATINE,20,MG,CP,1 BOITE 30 COMPRIME,224.00,1.00,224.00,X,0.70\n", "PRINCEPS"),
        (b"6118000140719,TORVA,ATORVASTATINE\n", "columns"),
    ],
)
def test_cnops_errors_name_file_and_line(line: bytes, message: str) -> None:
    ok = b"6118000140702,TORVA,ATORVASTATINE,10,MG,CP,1 BOITE 30 COMPRIME,116.00,72.30,116.00,G,0.70\n"
    with pytest.raises(ReferentialError, match=rf"cnops\.csv:3: .*{message}"):
        parse_cnops(HEADER + ok + line, "cnops.csv")


def test_cnops_bad_header() -> None:
    with pytest.raises(ReferentialError, match="cnops.csv:1"):
        parse_cnops(b"A,B\n1,2\n", "cnops.csv")


def test_shipped_cnops_loads() -> None:
    cnops = default_referentials().get("cnops-2014")
    assert len(cnops.rows) > 5000
    codes = [r.code for r in cnops.rows]
    assert len(codes) == len(set(codes))
    assert {r.reimbursement_rate for r in cnops.rows} <= {0.0, 0.7}


def test_manifest_entries_state_sources_and_licence() -> None:
    manifest = load_manifest()
    cnops = manifest["cnops-2014"]
    assert "not verified" in cnops.licence.lower() and "not verified" in cnops.notes.lower()
    for ref_id in ("mte-substances", "biosimilar-groups", "cheaper-strategies"):
        entry = manifest[ref_id]
        assert entry.url.startswith("https://") and entry.edition


@pytest.mark.corpus
def test_shipped_cnops_is_the_shared_upstream(shared_dir: Path) -> None:
    upstream = shared_dir / "data" / "morocco-cnops-2014" / "ref-des-medicaments-cnops-2014.csv"
    shipped = REPO / "referentials" / "prices" / "cnops-2014.csv.gz"
    assert gzip.decompress(shipped.read_bytes()) == upstream.read_bytes()


def test_mte_list() -> None:
    mte = default_referentials().get("mte-substances")
    assert mte.covers("levothyroxine") and mte.covers("lévothyroxine sodique")
    assert mte.covers("lacosamide")  # added by the 2022 arrêté
    assert not mte.covers("atorvastatine")
    assert set(mte.justifications) == {"MTE", "EFG", "CIF"}
    assert mte.efg_max_age_years == 6
    assert "2019" in mte.source.label


def _entry_for(tmp_path: Path, name: str, content: str):  # -> ManifestEntry
    from checker.referentials import ManifestEntry

    (tmp_path / name).write_text(content, encoding="utf-8")
    return ManifestEntry(id="t", title="t", publisher="t", edition="t", licence="t", url="t", files=((name, ""),))


def test_economic_loaders_report_file_and_line(tmp_path: Path) -> None:
    entry = _entry_for(tmp_path, "bad.json", '{\n "groups": [\n  {"substance": }\n ]\n}')
    with pytest.raises(ReferentialError, match=r"bad\.json:3"):
        load_biosimilars(entry, tmp_path)
    entry = _entry_for(tmp_path, "mte.json", json.dumps({"substances": [{"key": "x"}], "justifications": {},
                                                          "source": {}, "efg_max_age_years": 6}))
    with pytest.raises(ReferentialError, match=r"mte\.json: substances\[0\]: missing name"):
        load_mte(entry, tmp_path)
    entry = _entry_for(tmp_path, "strat.json", json.dumps({"strategies": [{"id": "a"}]}))
    with pytest.raises(ReferentialError, match=r"strat\.json: strategies\[0\]: missing"):
        load_strategies(entry, tmp_path)


def test_biosimilar_groups() -> None:
    groups = default_referentials().get("biosimilar-groups")
    for key in ("insuline glargine", "adalimumab", "etanercept", "enoxaparine", "filgrastim"):
        assert key in groups, key
        assert groups[key].source.url.startswith("https://")
    assert groups["insuline glargine"].is_reference("LANTUS SOLOSTAR")
    assert not groups["insuline glargine"].is_reference("ABASAGLAR")
