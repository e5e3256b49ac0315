"""``pertinence``: the command line. Thin: it parses options and calls the library."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import click

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
SEVERITIES = click.Choice(["info", "warning", "critical"], case_sensitive=False)
FORMATS = ["text", "json", "ndjson", "csv", "fhir", "cds-hooks", "html"]


def _split(values: tuple[str, ...]) -> list[str] | None:
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def _size(text: str) -> int:
    """A size option (``512M``, ``2G``, bytes); a bad value is a usage error (ValueError)."""
    from checker.audit.pipeline import AuditError, parse_size

    try:
        return parse_size(text)
    except AuditError as exc:
        raise ValueError(str(exc)) from None


def _exit_without_fhir(counts: Any, errors: Any, paths: tuple[str, ...], lang: str) -> None:
    """No readable FHIR resource in the inputs (empty folder, only non-FHIR files): say so and exit 2,
    the same way for check, report and audit (in the run's language, as the errors are)."""
    from checker.formats.catalogue import msg, number

    if counts.checked or counts.ignored:
        return
    click.echo("pertinence: " + msg(lang, "cli.no_fhir", where=", ".join(paths), files=number(counts.files, lang),
                                    rejected=number(counts.rejected, lang)), err=True)
    errors = list(errors)
    for e in errors[:10]:
        e = e if isinstance(e, dict) else e.to_dict()
        click.echo(f"  {e['location']}: {e['message']}", err=True)
    if len(errors) > 10:
        click.echo("  " + msg(lang, "cli.more", n=number(len(errors) - 10, lang)), err=True)
    sys.exit(EXIT_USAGE)


def _said(exc: BaseException, lang: str) -> str:
    """An error for the terminal: worded in ``lang`` when it carries a message code (a missing input)."""
    code = getattr(exc, "code", None)
    return code.text(lang, "input_error") if code is not None and hasattr(code, "text") else str(exc)


def _html(report: Any, output: str | None) -> str:
    from checker.audit.report import render_checked

    return render_checked(report, output=output)


def _write(text: str | bytes, output: str | None) -> None:
    if output and output != "-":
        from checker.outputs import write_atomic

        try:
            write_atomic(Path(output), text)
        except OSError as exc:  # a folder, a read-only place …: a usage error, not a crash
            click.echo(f"pertinence: cannot write {output}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_USAGE)
    else:
        click.echo(text, nl=not (text.endswith(b"\n") if isinstance(text, bytes) else text.endswith("\n")))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pertinence", prog_name="pertinence")
def main() -> None:
    """Check FHIR prescriptions against French/Moroccan guidelines, with a cited source per flag."""


@main.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--output", "-o", help="Write to this file instead of standard output.")
@click.option("--as-of", help="Day treated as today (YYYY-MM-DD); default: today.")
@click.option("--jurisdiction", type=click.Choice(["fr", "ma"]), default="fr", show_default=True)
@click.option("--min-severity", type=SEVERITIES, help="Hide findings below this severity.")
@click.option("--fail-on", type=SEVERITIES, default="critical", show_default=True,
              help="Exit 1 when a finding reaches this severity.")
@click.option("--select", multiple=True, help="Only these rules (ids or prefixes, comma-separated).")
@click.option("--ignore", multiple=True, help="Skip these rules (ids or prefixes, comma-separated).")
@click.option("--strict", is_flag=True, help="Validate every resource with fhir.resources.")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option("--max-decompressed", default="2G", show_default=True,
              help="Refuse a compressed input expanding past this size (e.g. 512M, 8G).")
@click.option("--max-expansion", default=500.0, show_default=True, type=click.FloatRange(min=1),
              help="Refuse a compressed input expanding more than this many times its size (past 64 MiB).")
def check(paths: tuple[str, ...], fmt: str, output: str | None, as_of: str | None, jurisdiction: str,
          min_severity: str | None, fail_on: str, select: tuple[str, ...], ignore: tuple[str, ...],
          strict: bool, lang: str, max_decompressed: str, max_expansion: float) -> None:
    """Check the prescriptions in PATHS (files, directories, or - for stdin)."""
    from checker.audit.report import check_inputs as run_check
    from checker.findings import Severity
    from checker.formats import render
    from checker.referentials import ReferentialError

    from checker.audit.sharded import check_sharded, wants_shards

    big = not strict and wants_shards(paths)  # a large input: through patient shards on disk (same report)
    if big and fmt == "json":
        _check_json_streamed(paths, output, fail_on, as_of=as_of, jurisdiction=jurisdiction, select=_split(select),
                             ignore=_split(ignore), min_severity=min_severity, lang=lang,
                             max_decompressed=_size(max_decompressed), max_expansion=max_expansion)
    try:
        if big:
            report = check_sharded(list(paths), as_of=as_of, jurisdiction=jurisdiction, select=_split(select),
                                   ignore=_split(ignore), min_severity=min_severity, lang=lang,
                                   max_decompressed=_size(max_decompressed), max_expansion=max_expansion)
        else:
            report = run_check(list(paths), as_of=as_of, jurisdiction=jurisdiction, select=_split(select),
                               ignore=_split(ignore), min_severity=min_severity, lang=lang, strict=strict,
                               max_decompressed=_size(max_decompressed), max_expansion=max_expansion)
    except (ValueError, FileNotFoundError, ReferentialError) as exc:
        click.echo(f"pertinence: {_said(exc, lang)}", err=True)
        sys.exit(EXIT_USAGE)
    color = fmt == "text" and output in (None, "-") and sys.stdout.isatty()
    if fmt in ("json", "ndjson") and output and output != "-":  # the bytes orjson writes, no text copy
        from checker.formats import render_bytes

        _write(render_bytes(report, fmt), output)
    else:
        _write(_html(report, output) if fmt == "html" else render(report, fmt, color=color), output)
    _exit_without_fhir(report.inputs, report.errors, paths, lang)
    if report.inputs.checked == 0 and report.errors:  # nothing readable at all
        sys.exit(EXIT_USAGE)
    worst = report.max_severity()
    sys.exit(EXIT_FINDINGS if worst is not None and worst.rank >= Severity.parse(fail_on).rank else EXIT_OK)


def _check_json_streamed(paths: tuple[str, ...], output: str | None, fail_on: str, **options: Any) -> None:
    """``check --format json`` of a large input, written as it is merged (bounded memory); exits."""
    from checker.audit.sharded import write_sharded_json
    from checker.findings import Severity
    from checker.referentials import ReferentialError

    to_file = bool(output and output != "-")
    target = Path(f"{output}.part") if to_file else None
    try:
        with (target.open("wb") if target is not None else contextlib.nullcontext(sys.stdout.buffer)) as out:
            written = write_sharded_json(list(paths), out, **options)
        if target is not None:
            os.replace(target, str(output))
    except (ValueError, FileNotFoundError, ReferentialError) as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except OSError as exc:
        click.echo(f"pertinence: cannot write {output}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    finally:
        if target is not None:
            target.unlink(missing_ok=True)
    if written.inputs.checked == 0 and written.errors:
        sys.exit(EXIT_USAGE)
    worst = written.worst
    sys.exit(EXIT_FINDINGS if worst is not None and worst.rank >= Severity.parse(fail_on).rank else EXIT_OK)


@main.command("rules")
def list_rules() -> None:
    """List every rule: id, category, default severity, title."""
    from checker.registry import all_rules

    for r in all_rules():
        click.echo(f"{r.id}  {r.category:<18} {r.severity.value:<8} {r.title}")


@main.command()
@click.argument("rule_id")
def explain(rule_id: str) -> None:
    """Print a rule's documentation and source."""
    from checker.registry import get_rule

    try:
        r = get_rule(rule_id)
    except KeyError as exc:
        click.echo(f"pertinence: {exc.args[0]}", err=True)
        sys.exit(EXIT_USAGE)
    from checker.formats.plain import plain_text

    click.echo(f"{r.id} — {r.name}\ncategory: {r.category}   default severity: {r.severity.value}\n")
    click.echo(plain_text(r.doc))
    click.echo(f"\nSource: {r.source.cite()}" + (f"\n{r.source.url}" if r.source.url else ""))
    if r.referentials:
        click.echo(f"Referentials: {', '.join(r.referentials)}")
    from checker.referentials import default_referentials
    from checker.registry import data_rows

    rows = data_rows(r.id, default_referentials())
    if rows:
        click.echo(f"\nData rows ({len(rows)}):")
        for row_line in rows:
            click.echo(f"  {row_line}")


# --- referentials (drug referential owner) -------------------------------------------------------


@main.group()
def referentials() -> None:
    """Show or refresh the shipped referentials (BDPM snapshot, substance tables…)."""


@referentials.command("list")
def referentials_list() -> None:
    """List every referential of the manifest: id, edition, licence, files."""
    from checker.referentials import ReferentialError, load_manifest

    try:
        manifest = load_manifest()
    except ReferentialError as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for e in sorted(manifest.values(), key=lambda e: e.id):
        click.echo(f"{e.id:<20} {e.edition:<12} {e.title}")
        click.echo(f"{'':<20} licence: {e.licence}")
        for path, sha in e.files:
            click.echo(f"{'':<20} {path}  sha256 {sha[:12]}…")


@referentials.command("update")
@click.option("--bdpm", "bdpm_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Folder of an official BDPM download (CIS_bdpm.txt, CIS_CIP_bdpm.txt, …; cp1252 or UTF-8).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Referentials folder to update (default: the shipped one).")
def referentials_update(bdpm_dir: Path, root: Path | None) -> None:
    """Import a newer BDPM download into the shipped snapshot and update the manifest."""
    from checker.drugs.bdpm import BdpmImportError, update_snapshot

    try:
        summary = update_snapshot(bdpm_dir, root)
    except BdpmImportError as exc:
        click.echo(f"pertinence: BDPM import refused, nothing written.\n{exc}", err=True)
        sys.exit(EXIT_USAGE)
    except FileNotFoundError as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(str(summary))


# --- interactions (iatrogenic owner) -------------------------------------------------------------


@referentials.command("coverage")
def referentials_coverage() -> None:
    """How each substance of the interaction thesaurus is reached (key, ATC, names, BDPM codes)."""
    from checker.drugs.coverage import render_coverage, thesaurus_coverage

    click.echo(render_coverage(thesaurus_coverage()))


@main.command("identify")
@click.argument("texts", nargs=-1)
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False), help="One label per line.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def identify_cmd(texts: tuple[str, ...], path: str | None, fmt: str) -> None:
    """Show what identification reads in prescription labels ("Zyban LP 150 mg")."""
    import json

    from checker.drugs import explain_text

    labels = list(texts)
    if path:
        labels += [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not labels:
        raise click.UsageError("give labels as arguments or --file")
    results = [explain_text(t) for t in labels]
    if fmt == "json":
        click.echo(json.dumps(results, ensure_ascii=False, indent=2))
        return
    for r in results:
        found: list[dict[str, str]] = r["substances"]  # type: ignore[assignment]
        subs = " + ".join(f"{s['name']}{' ' + s['strength'] if s['strength'] else ''}" for s in found)
        click.echo(f"{r['text']}\n  → {subs or '(nothing)'}  [{r['method']}, {r['confidence']:.2f}]")
        for label, field in (("product", "product"), ("CIS", "cis"), ("CIP13", "cip13"), ("generic group", "generic_group"),
                             ("route", "route"), ("form", "form"), ("alternatives", "alternatives"),
                             ("note", "note"), ("refused", "refused")):
            if r.get(field):
                click.echo(f"  {label}: {r[field]}")


@main.command("interactions")
@click.argument("substance_a")
@click.argument("substance_b")
def interactions_lookup(substance_a: str, substance_b: str) -> None:
    """List the ANSM thesaurus (2023-09) entries linking two substances (DCI names), with the
    classes that explain each one. Exit 0 when found, 1 when the thesaurus lists none."""
    from checker.referentials import default_referentials
    from checker.text import fold

    th = default_referentials().get("ansm-thesaurus")
    a, b = fold(substance_a), fold(substance_b)
    for name, key in ((substance_a, a), (substance_b, b)):
        if not th.knows(key):
            click.echo(f"note: {name!r} is not named in the thesaurus (nor in its class lists)", err=True)
    found = th.matches(a, b)
    if not found:
        click.echo(f"no entry for {substance_a} + {substance_b} in the ANSM thesaurus (2023-09)")
        sys.exit(1)
    for m in found:
        levels = " / ".join(lv.level for lv in m.entry.levels)
        via = f"{' > '.join(m.path_first)}  +  {' > '.join(m.path_second)}"
        click.echo(f"{levels:<14} {th.entities.get(m.entry.a, {}).get('name', m.entry.a)} + {m.entry.interactant}"
                   f"  (PDF line {m.entry.line})\n{'':<14} via {via}")


# --- protocols (protocol owner) ------------------------------------------------------------------


@main.group("protocols")
def protocols_group() -> None:
    """HAS-style protocols (referentials/protocols/*.xml): validate, list and start a new one."""


@protocols_group.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def protocols_validate(files: tuple[str, ...]) -> None:
    """Validate protocol FILES against the XSD and the decision-graph checks (exit 1 on error)."""
    from checker.protocols import validate_files

    problems = validate_files(list(files))
    for p in problems:
        click.echo(p, err=True)
    if problems:
        click.echo(f"{len(problems)} problem(s) in {len(files)} file(s)", err=True)
        sys.exit(EXIT_FINDINGS)
    click.echo(f"{len(files)} protocol file(s) valid")


@protocols_group.command("new")
@click.argument("protocol_id")
@click.option("--kind", type=click.Choice(["imaging", "biology", "transport", "medication"]), default="imaging",
              show_default=True)
@click.option("--dir", "protocols_dir", type=click.Path(file_okay=False), default=None,
              help="Where to write the XML (default: the shipped referentials/protocols).")
@click.option("--samples", "samples_dir", type=click.Path(file_okay=False), default="fhir_samples/rules",
              show_default=True, help="Rule sample folder (OP001/ or OP002/ is added).")
def protocols_new(protocol_id: str, kind: str, protocols_dir: str | None, samples_dir: str) -> None:
    """Write a commented protocol template PROTOCOL_ID with a pass and a fail sample."""
    from checker.protocols.authoring import new_protocol
    from checker.referentials import referentials_dir

    target = Path(protocols_dir) if protocols_dir else referentials_dir() / "protocols"
    try:
        written = new_protocol(protocol_id, kind=kind, protocols_dir=target, samples_dir=Path(samples_dir))
    except (ValueError, FileExistsError) as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for path in written:
        click.echo(str(path))
    click.echo(f"next: pertinence protocols validate {written[0]} && python tools/refresh_manifest.py")


@protocols_group.command("list")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
def protocols_list(lang: str) -> None:
    """List the shipped protocols: id, kind, rule, title and source."""
    from checker.referentials import ReferentialError, default_referentials

    try:
        protocols = default_referentials().get("protocols")
    except ReferentialError as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    for p in protocols.protocols:
        rule_id = "OP002" if p.kind == "medication" else "OP001"
        src = p.sources[0]
        click.echo(f"{p.id:<38} {p.kind:<10} {rule_id}  {p.title(lang)}")
        click.echo(f"{'':<38} {'':<10}        {src.publisher} {src.year} — {src.title}")


# --- serve / feedback (CDS Hooks service owner) --------------------------------------------------

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML configuration file.")
@click.option("--insecure-dev", is_flag=True, help="Disable JWT authentication (local demos only, loopback only).")
@click.option("--workers", type=click.IntRange(min=1, max=64), default=None,
              help="Worker processes answering requests under one supervisor (default: the number of cores).")
def serve(host: str, port: int, config_path: str | None, insecure_dev: bool, workers: int | None) -> None:
    """Run the CDS Hooks 2.0 service (discovery, order-select, order-sign, feedback)."""
    import os
    from dataclasses import replace

    from checker.referentials import ReferentialError
    from checker.service import CONFIG_ENV, INSECURE_ENV, ConfigError, create_app, load_config

    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if insecure_dev:
        if host not in _LOOPBACK:
            click.echo("pertinence: --insecure-dev is refused on a non-loopback interface", err=True)
            sys.exit(EXIT_USAGE)
        cfg = replace(cfg, auth=replace(cfg.auth, enabled=False))
        click.echo("*" * 78 + "\n*  WARNING: --insecure-dev: JWT AUTHENTICATION IS OFF. Anyone reaching this port can\n"
                   "*  call the service. For local demos only; never with real patient data.\n" + "*" * 78, err=True)
    elif host not in _LOOPBACK:
        click.echo(f"pertinence: listening on {host} (not loopback): put TLS in front (CDS Hooks requires HTTPS)",
                   err=True)
    workers = workers or os.cpu_count() or 1
    try:  # before any worker: keys, referential checksums, feedback database, drug index cache filled
        app = create_app(cfg, warm=workers == 1)
    except (ValueError, ReferentialError) as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    import uvicorn

    if workers == 1:
        uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
        return
    app.state.pertinence.store.close()
    os.environ[CONFIG_ENV] = str(Path(config_path).resolve()) if config_path else ""
    os.environ[INSECURE_ENV] = "1" if insecure_dev else ""
    uvicorn.run("checker.service:app_from_env", factory=True, workers=workers, host=host, port=port,
                log_level="info", server_header=False)


@main.group()
def feedback() -> None:
    """Card feedback received from EHRs (alert-fatigue statistics)."""


@feedback.command("stats")
@click.option("--db", default=None, type=click.Path(dir_okay=False),
              help="Feedback database written by `pertinence serve` (default: pertinence-feedback.sqlite3 in the "
                   "user data folder).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def feedback_stats_cmd(db: str | None, as_json: bool) -> None:
    """Override rate per rule: how often prescribers dismiss each rule's cards."""
    import json

    from checker.service import feedback_stats
    from checker.service.config import default_feedback_db

    db = db or str(default_feedback_db())

    if not Path(db).is_file():
        click.echo(f"pertinence: {db}: no feedback database", err=True)
        sys.exit(EXIT_USAGE)
    stats = feedback_stats(db)
    if as_json:
        click.echo(json.dumps(stats, ensure_ascii=False, indent=2))
        return
    click.echo(f"{'rule':<8} {'shown':>7} {'feedback':>9} {'accepted':>9} {'overridden':>11} {'override %':>11}  top reason")
    for s in stats:
        rate = "-" if s["override_rate"] is None else f"{100 * s['override_rate']:.1f}"
        top = s["override_reasons"][0] if s["override_reasons"] else None
        reason = f"{top['display'] or top['code'] or '(none given)'} ×{top['count']}" if top else ""
        click.echo(f"{s['rule'] or '(unknown)':<8} {s['cards_shown']:>7} {s['feedback']:>9} {s['accepted']:>9} "
                   f"{s['overridden']:>11} {rate:>11}  {reason}")


# --- audit / report (batch audit owner) ----------------------------------------------------------


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder receiving findings.ndjson/.csv, errors.ndjson, summary.json, indicators.csv, report.html.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes checking shards in parallel.")
@click.option("--memory", default="1G", show_default=True,
              help="Memory budget of the whole audit (e.g. 512M, 2G): sets how finely the input is sharded.")
@click.option("--resume", is_flag=True, help="Continue an interrupted audit from its completed shards.")
@click.option("--engine", type=click.Choice(["local", "dask"]), default="local", show_default=True)
@click.option("--scheduler", help="Dask scheduler address (tcp://host:8786); default: a local cluster.")
@click.option("--as-of", help="Day treated as today (YYYY-MM-DD); default: today.")
@click.option("--jurisdiction", type=click.Choice(["fr", "ma"]), default="fr", show_default=True)
@click.option("--select", multiple=True, help="Only these rules (ids or prefixes, comma-separated).")
@click.option("--ignore", multiple=True, help="Skip these rules (ids or prefixes, comma-separated).")
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: only on a terminal outside CI).")
@click.option("--max-decompressed", default="2G", show_default=True,
              help="Refuse a compressed input expanding past this size (e.g. 512M, 8G).")
@click.option("--max-expansion", default=500.0, show_default=True, type=click.FloatRange(min=1),
              help="Refuse a compressed input expanding more than this many times its size (past 64 MiB).")
@click.option("--fail-on", type=SEVERITIES, default="critical", show_default=True,
              help="Exit 1 when a finding reaches this severity (as check does).")
def audit(inputs: tuple[str, ...], out_dir: str, jobs: int, memory: str, resume: bool, engine: str,
          scheduler: str | None, as_of: str | None, jurisdiction: str, select: tuple[str, ...],
          ignore: tuple[str, ...], lang: str, progress: bool | None, max_decompressed: str,
          max_expansion: float, fail_on: str) -> None:
    """Audit a prescription export (NDJSON bulk exports, Bundles, gzip, folders) into --out."""
    from checker.audit import AuditError, AuditOptions, parse_size, run_audit
    from checker.referentials import ReferentialError

    try:
        sel, ign = _split(select), _split(ignore)
        opts = AuditOptions(out=Path(out_dir), jobs=jobs, memory=parse_size(memory), resume=resume, engine=engine,
                            scheduler=scheduler, as_of=as_of, jurisdiction=jurisdiction, lang=lang,
                            select=tuple(sel) if sel else None, ignore=tuple(ign) if ign else None,
                            progress=progress, max_decompressed=_size(max_decompressed),
                            max_expansion=max_expansion)
        summary = run_audit(list(inputs), opts)
    except (AuditError, ValueError, FileNotFoundError, ReferentialError) as exc:
        click.echo(f"pertinence: {_said(exc, lang)}", err=True)
        sys.exit(EXIT_USAGE)
    from checker.formats.catalogue import msg, number

    inp, fnd = summary["inputs"], summary["findings"]
    n = lambda v: number(v, lang)  # noqa: E731
    click.echo(msg(lang, "audit.done", resources=n(inp["resources"]), checked=n(inp["checked"]),
                   ignored=n(inp["ignored"]), rejected=n(inp["rejected"]), patients=n(summary["patients"]),
                   findings=n(fnd["total"]), critical=n(fnd["by_severity"].get("critical", 0)), out=out_dir), err=True)
    if not (inp["checked"] or inp["ignored"]):
        from checker.audit.merge import first_errors

        _exit_without_fhir(_Counts(inp), first_errors(Path(out_dir) / "errors.ndjson", 11), inputs, lang)
    from checker.findings import Severity

    floor = Severity.parse(fail_on).rank
    reached = any(n and Severity.parse(sev).rank >= floor for sev, n in fnd["by_severity"].items())
    sys.exit(EXIT_FINDINGS if reached else EXIT_OK)


class _Counts:
    """Input counts read back from an audit summary."""

    def __init__(self, d: dict[str, int]) -> None:
        self.files, self.checked, self.ignored, self.rejected = d["files"], d["checked"], d["ignored"], d["rejected"]


@main.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option("--output", "-o", required=True, help="HTML file to write.")
@click.option("--as-of", help="Day treated as today (YYYY-MM-DD); default: today.")
@click.option("--jurisdiction", type=click.Choice(["fr", "ma"]), default="fr", show_default=True)
@click.option("--lang", type=click.Choice(["fr", "en"]), default="fr", show_default=True)
@click.option("--max-decompressed", default="2G", show_default=True,
              help="Refuse a compressed input expanding past this size (e.g. 512M, 8G).")
@click.option("--max-expansion", default=500.0, show_default=True, type=click.FloatRange(min=1),
              help="Refuse a compressed input expanding more than this many times its size (past 64 MiB).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: large inputs on a terminal outside CI).")
def report(inputs: tuple[str, ...], output: str, as_of: str | None, jurisdiction: str, lang: str,
           max_decompressed: str, max_expansion: float, progress: bool | None) -> None:
    """Write a self-contained HTML report (doctor's self-check) of the prescriptions in INPUTS."""
    from checker.audit.report import build_report
    from checker.referentials import ReferentialError

    try:
        html, checked = build_report(list(inputs), as_of=as_of, jurisdiction=jurisdiction, lang=lang, output=output,
                                     progress=progress, max_decompressed=_size(max_decompressed),
                                     max_expansion=max_expansion)
    except (ValueError, FileNotFoundError, ReferentialError) as exc:
        click.echo(f"pertinence: {_said(exc, lang)}", err=True)
        sys.exit(EXIT_USAGE)
    _write(html, output)
    _exit_without_fhir(checked.inputs, checked.errors, inputs, lang)
    if checked.errors:
        from checker.formats.catalogue import msg, number

        where = output if output != "-" else msg(lang, "cli.the_report")
        click.echo("pertinence: " + msg(lang, "cli.input_errors", n=number(len(checked.errors), lang),
                                        rejected=number(checked.inputs.rejected, lang), where=where), err=True)
        if checked.inputs.checked == 0:  # nothing readable at all: as `check` does
            sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
