"""``pertinence``: the command line. Thin: it parses options and calls the library."""

from __future__ import annotations

import sys
from pathlib import Path

import click

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
SEVERITIES = click.Choice(["info", "warning", "critical"], case_sensitive=False)
FORMATS = ["text", "json", "ndjson", "csv", "fhir", "cds-hooks"]


def _split(values: tuple[str, ...]) -> list[str] | None:
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None


def _write(text: str, output: str | None) -> None:
    if output and output != "-":
        from checker.outputs import write_atomic

        write_atomic(Path(output), text)
    else:
        click.echo(text, nl=not text.endswith("\n"))


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
def check(paths: tuple[str, ...], fmt: str, output: str | None, as_of: str | None, jurisdiction: str,
          min_severity: str | None, fail_on: str, select: tuple[str, ...], ignore: tuple[str, ...],
          strict: bool, lang: str) -> None:
    """Check the prescriptions in PATHS (files, directories, or - for stdin)."""
    from checker import check as run_check
    from checker.findings import Severity
    from checker.formats import render

    try:
        report = run_check(list(paths), as_of=as_of, jurisdiction=jurisdiction, select=_split(select),
                           ignore=_split(ignore), min_severity=min_severity, lang=lang, strict=strict)
    except (ValueError, FileNotFoundError) as exc:
        click.echo(f"pertinence: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    color = fmt == "text" and output in (None, "-") and sys.stdout.isatty()
    _write(render(report, fmt, color=color), output)
    if report.inputs.resources == 0 and report.errors:
        sys.exit(EXIT_USAGE)
    worst = report.max_severity()
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
    click.echo(f"{r.id} — {r.name}\ncategory: {r.category}   default severity: {r.severity.value}\n")
    click.echo(r.doc)
    click.echo(f"\nSource: {r.source.cite()}" + (f"\n{r.source.url}" if r.source.url else ""))
    if r.referentials:
        click.echo(f"Referentials: {', '.join(r.referentials)}")


# --- referentials (drug referential owner) -------------------------------------------------------


# --- protocols (protocol owner) ------------------------------------------------------------------


# --- serve / feedback (CDS Hooks service owner) --------------------------------------------------


# --- audit / report (batch audit owner) ----------------------------------------------------------


if __name__ == "__main__":
    main()
