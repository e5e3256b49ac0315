"""The README documents every command and option the CLI has, and says the demo exits 1 by design."""

from __future__ import annotations

from collections.abc import Iterator

import click

import cli
from tests.conftest import REPO


def _commands(group: click.Group, prefix: str = "pertinence") -> Iterator[tuple[str, click.Command]]:
    for name, cmd in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, path)
        else:
            yield path, cmd


def test_readme_names_every_command_and_option() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = []
    for path, cmd in _commands(cli.main):
        if path not in readme:
            missing.append(path)
        for param in cmd.params:
            if isinstance(param, click.Option):
                names = [n for n in param.opts + param.secondary_opts if n.startswith("--") and n != "--help"]
                if names and not any(n in readme for n in names):
                    missing.append(f"{path} {names[0]}")
    assert not missing, f"undocumented in README.md: {missing}"


def test_readme_documents_every_format() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    for fmt in cli.FORMATS:
        assert f"`{fmt}`" in readme, fmt


def test_readme_says_the_demo_exits_1_by_design() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start"): readme.index("## The command line")]
    assert "exit" in quick and "1" in quick and "by design" in quick
