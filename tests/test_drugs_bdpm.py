"""BDPM import: strict parsing, both encodings, file:line errors, reproducible snapshot, update command."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from checker.drugs import bdpm
from checker.drugs.bdpm import BdpmImportError, parse_price, read_download, update_snapshot
from checker.drugs.index import brand_of, parse_strength, units_per_pack
from tests.conftest import REPO

# A miniature official download (same columns as the real files; values taken from BDPM 2026-01).
MINI = {
    "CIS_bdpm.txt": "60002283\tANASTROZOLE ACCORD 1 mg, comprimé pelliculé\tcomprimé pelliculé\torale\t"
                    "Autorisation active\tProcédure décentralisée\tCommercialisée\t16/03/2011\t\t\t ACCORD HEALTHCARE\tNon\n",
    "CIS_CIP_bdpm.txt": "60002283\t4949729\tplaquette(s) PVC PVDC aluminium de 30 comprimé(s)\tPrésentation active\t"
                        "Déclaration de commercialisation\t16/03/2011\t3400949497294\toui\t100%\t24,34\t25,36\t1,02\t\n",
    "CIS_COMPO_bdpm.txt": "60002283\tcomprimé\t42215\tANASTROZOLE\t1,00 mg\tun comprimé\tSA\t1\n",
    "CIS_GENER_bdpm.txt": "1001\tANASTROZOLE 1 mg - ARIMIDEX 1 mg, comprimé pelliculé\t60002283\t1\t2\n",
    "CIS_CPD_bdpm.txt": "60002283\tprescription réservée aux spécialistes en ONCOLOGIE\r\n\r\r\n",
    "CIS_MITM.txt": "60002283\tL02BG03\tANASTROZOLE ACCORD 1 mg, comprimé pelliculé\thttps://example.org\n",
    "CIS_CIP_Dispo_Spec.txt": "60002283\t3400949497294\t2\tTension d'approvisionnement\t13/08/2025\t26/01/2026\t\thttps://x\n",
}


def write_download(folder: Path, encoding: str = "utf-8", overrides: dict[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in {**MINI, **(overrides or {})}.items():
        (folder / name).write_bytes(text.encode(encoding))
    return folder


def test_cp1252_and_utf8_give_the_same_snapshot(tmp_path: Path) -> None:
    a = write_download(tmp_path / "utf8", "utf-8")
    b = write_download(tmp_path / "cp1252", "cp1252")
    ra, rb = tmp_path / "ra", tmp_path / "rb"
    update_snapshot(a, ra)
    update_snapshot(b, rb)
    for name in bdpm.SNAPSHOT_TABLES:
        assert (ra / "bdpm" / f"{name}.tsv.gz").read_bytes() == (rb / "bdpm" / f"{name}.tsv.gz").read_bytes()
    text = gzip.decompress((rb / "bdpm" / "CIS_bdpm.tsv.gz").read_bytes()).decode("utf-8")
    assert "comprimé pelliculé" in text


def test_update_is_byte_for_byte_reproducible_and_writes_manifest(tmp_path: Path) -> None:
    src = write_download(tmp_path / "dl")
    root = tmp_path / "refs"
    s1 = update_snapshot(src, root)
    first = {p.name: p.read_bytes() for p in (root / "bdpm").iterdir()}
    manifest1 = (root / "MANIFEST.json").read_bytes()
    s2 = update_snapshot(src, root)
    assert {p.name: p.read_bytes() for p in (root / "bdpm").iterdir()} == first
    assert (root / "MANIFEST.json").read_bytes() == manifest1
    assert s1.blank_lines == 1 and s2.files["CIS_bdpm"] == 1
    entry = next(e for e in json.loads(manifest1)["referentials"] if e["id"] == "bdpm")
    assert entry["edition"] == "2026-01" and len(entry["files"]) == len(bdpm.SNAPSHOT_TABLES)
    assert "Licence Ouverte" in entry["licence"]
    # gzip header carries no timestamp and no file name
    assert first["CIS_bdpm.tsv.gz"][4:8] == b"\x00\x00\x00\x00"


@pytest.mark.parametrize(
    "table, line, message",
    [
        ("CIS_bdpm.txt", "6000228\tX\tcomprimé\torale\ta\tb\tc\t16/03/2011\t\t\t\tNon\n", "cis: expected 8 digits"),
        ("CIS_CIP_bdpm.txt", "60002283\t4949729\tlabel\ta\tb\t16/03/2011\t3400949497294\toui\t65%\t2x,1\t\t\t\n",
         "price: expected a price"),
        ("CIS_COMPO_bdpm.txt", "60002283\tcomprimé\t42215\tANASTROZOLE\t1 mg\tun comprimé\tXX\t1\n", "nature"),
        ("CIS_GENER_bdpm.txt", "1\tlabel\t60002283\t3\t1\n", "type: expected one of"),
        ("CIS_MITM.txt", "60002283\n", "expected 4 tab-separated columns"),
        ("CIS_CIP_Dispo_Spec.txt", "60002283\t\t1\tRupture\t32/13/2025\t\t\t\n", "start: expected a DD/MM/YYYY"),
    ],
)
def test_malformed_lines_are_rejected_with_file_and_line(tmp_path: Path, table: str, line: str, message: str) -> None:
    good = MINI[table]
    src = write_download(tmp_path / "dl", overrides={table: good + line})
    root = tmp_path / "refs"
    with pytest.raises(BdpmImportError) as exc:
        update_snapshot(src, root)
    errors = exc.value.errors
    assert len(errors) == 1
    assert errors[0].startswith(f"{src / table}:2: ") and message in errors[0]
    assert not (root / "bdpm").exists(), "nothing may be written when the import is refused"


def test_missing_required_file_is_an_error(tmp_path: Path) -> None:
    src = write_download(tmp_path / "dl")
    (src / "CIS_COMPO_bdpm.txt").unlink()
    with pytest.raises(BdpmImportError, match="CIS_COMPO_bdpm.txt: required BDPM file is missing"):
        read_download(src)


def test_cli_update_and_list(tmp_path: Path) -> None:
    import cli

    src = write_download(tmp_path / "dl")
    root = tmp_path / "refs"
    runner = CliRunner()
    res = runner.invoke(cli.main, ["referentials", "update", "--bdpm", str(src), "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert "CIS_bdpm: 1 rows" in res.output
    bad = write_download(tmp_path / "bad", overrides={"CIS_bdpm.txt": "12\tx\n"})
    res = runner.invoke(cli.main, ["referentials", "update", "--bdpm", str(bad), "--root", str(tmp_path / "r2")])
    assert res.exit_code == 2 and "CIS_bdpm.txt:1:" in res.output
    res = runner.invoke(cli.main, ["referentials", "list"])
    assert res.exit_code == 0 and "bdpm" in res.output and "substances" in res.output


@pytest.mark.parametrize("text, euros", [("24,34", 24.34), ("1,195,27", 1195.27), ("3", 3.0), ("0,5", 0.5)])
def test_prices_with_decimal_comma_and_thousands(text: str, euros: float) -> None:
    assert parse_price(text) == pytest.approx(euros)


@pytest.mark.parametrize("bad", ["", "2x", "1.195,27,1", "12,345"])
def test_bad_prices_raise(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_price(bad)


@pytest.mark.parametrize(
    "label, units",
    [
        ("plaquette(s) PVC PVDC aluminium de 30 comprimé(s)", 30),
        ("3 plaquette(s) thermoformée(s) PVC aluminium de 28 comprimé(s)", 84),
        ("30 sachet(s) papier aluminium polyéthylène de 4 g", 30),
        ("1 flacon(s) en verre de 100 ml", 1),
        ("tube(s) aluminium de 30 g", None),
        ("1 flacon(s) polyéthylène haute densité (PEHD) de 28 comprimé(s)", 28),
        ("3 plaquette(s) PVC-Aluminium de 24 comprimé(s) - 3 plaquette(s) PVC-Aluminium de 4 comprimé(s)", 84),
        ("1 cartouche(s) polypropylène de 100 dose(s) avec inhalateur(s)", 100),
        ("6 seringues préremplies en verre de 0,4 mL dans 6 (3 x 2) stylos pré-remplis", 6),
        ("1 flacon en verre de 2500 UI + 1 flacon en verre de 5 ml", 1),
    ],
)
def test_units_per_pack(label: str, units: int | None) -> None:
    assert units_per_pack(label) == units


def test_strength_and_brand_parsing() -> None:
    assert parse_strength("1,00 mg") == (1.0, "mg")
    assert parse_strength("100 000 UI") == (100000.0, "ui")
    assert parse_strength("50 microgrammes") == (50.0, "ug")
    assert brand_of("DOLIPRANE 1000 mg, comprimé") == "doliprane"
    assert brand_of("AMLODIPINE BIOGARAN 5 mg, gélule") == "amlodipine biogaran"


@pytest.mark.corpus
def test_shipped_snapshot_is_rebuilt_byte_for_byte(shared_dir: Path, tmp_path: Path) -> None:
    """`pertinence referentials update --bdpm ../shared/data/bdpm-2026-01` reproduces the shipped files."""
    root = tmp_path / "refs"
    root.mkdir()
    shutil.copy(REPO / "referentials" / "MANIFEST.json", root / "MANIFEST.json")
    summary = update_snapshot(shared_dir / "data" / "bdpm-2026-01", root)
    assert summary.files["CIS_bdpm"] == 15799
    for name in bdpm.SNAPSHOT_TABLES:
        rel = f"bdpm/{name}.tsv.gz"
        assert (root / rel).read_bytes() == (REPO / "referentials" / rel).read_bytes(), rel
    def bdpm_entry(path: Path) -> dict:
        return next(e for e in json.loads(path.read_text(encoding="utf-8"))["referentials"] if e["id"] == "bdpm")

    assert bdpm_entry(root / "MANIFEST.json") == bdpm_entry(REPO / "referentials" / "MANIFEST.json")
