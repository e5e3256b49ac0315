"""Several worker processes behind ``pertinence serve --workers N``: the app factory reads its
configuration from the environment, the feedback store and its per-caller allowance are shared
through SQLite, and the parent refuses to start before any worker when a referential fails."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from checker.formats import codes
from checker.service import CONFIG_ENV, INSECURE_ENV, app_from_env, config_from_env
from checker.service.feedback import FeedbackLimits, FeedbackStore
from tests.test_service import hook_body, med


@pytest.fixture(scope="module")
def refs() -> Any:
    from checker.service.app import load_referentials

    return load_referentials()


@pytest.fixture(autouse=True)
def _restore_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``serve`` hands its configuration to the workers through os.environ, and a warmed-up app sets
    the collector up for serving: both undone after each test."""
    for name in (CONFIG_ENV, INSECURE_ENV):
        monkeypatch.setenv(name, "")
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def _config_file(tmp_path: Path) -> Path:
    path = tmp_path / "pertinence.toml"
    path.write_text('[server]\nas_of = "2026-01-15"\nlang = "en"\nfeedback_db = "fb.sqlite3"\n'
                    '[limits]\nmax_draft_orders = 7\n', encoding="utf-8")
    return path


def test_rate_allowance_is_shared_by_two_stores_on_one_database(tmp_path: Path) -> None:
    """Two workers = two stores on the same file: a caller's allowance per minute is counted once."""
    limits = FeedbackLimits(max_items_per_minute=10)
    a = FeedbackStore(tmp_path / "fb.sqlite3", limits)
    b = FeedbackStore(tmp_path / "fb.sqlite3", limits)
    assert a.take("https://ehr.example.org", 6) is None
    wait = b.take("https://ehr.example.org", 6)
    assert wait is not None and 1 <= wait <= 60
    assert b.take("https://other.example.org", 6) is None  # another caller has its own allowance
    assert a.take("https://ehr.example.org", 4) is None  # up to the limit exactly
    a.close()
    b.close()


def test_rate_window_restarts_after_a_minute(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "fb.sqlite3", FeedbackLimits(max_items_per_minute=5))
    assert store.take("c", 5, now=1000.0) is None
    assert store.take("c", 1, now=1030.0) == pytest.approx(30.0)
    assert store.take("c", 5, now=1061.0) is None
    store.close()


def test_card_logged_by_one_worker_takes_feedback_through_another(tmp_path: Path) -> None:
    a = FeedbackStore(tmp_path / "fb.sqlite3")
    b = FeedbackStore(tmp_path / "fb.sqlite3")
    a.log_cards("order-sign", [("u1", "IX001", "fp", "interaction", "warning", ["s1"])])
    item = {"card": "u1", "outcome": "accepted", "acceptedSuggestions": [{"id": "s1"}],
            "outcomeTimestamp": "2026-01-15T10:00:00Z"}
    b.check_items("order-sign", [item])
    assert b.record("order-sign", [item]) == 1
    a.close()
    b.close()


def test_config_from_env_reads_the_file_and_the_insecure_flag(tmp_path: Path) -> None:
    path = _config_file(tmp_path)
    cfg = config_from_env({CONFIG_ENV: str(path)})
    assert cfg.as_of == "2026-01-15" and cfg.lang == "en" and cfg.limits.max_draft_orders == 7
    assert cfg.feedback_db == str(tmp_path / "fb.sqlite3") and cfg.auth.enabled
    assert not config_from_env({CONFIG_ENV: str(path), INSECURE_ENV: "1"}).auth.enabled
    assert config_from_env({}).as_of is None  # no file: the defaults


def test_factory_builds_a_working_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refs: Any) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(_config_file(tmp_path)))
    monkeypatch.setenv(INSECURE_ENV, "1")
    app = app_from_env()
    assert app.state.pertinence._identities  # warmed up before serving
    with TestClient(app) as client:
        body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], [med("a1", "WARFARINE 5 mg comprimé")])
        resp = client.post("/cds-services/order-sign", json=body)
        assert resp.status_code == 200
        rules = {(c.get("extension") or {}).get(codes.CARD_EXTENSION, {}).get("rule") for c in resp.json()["cards"]}
        assert "IX001" in rules  # ibuprofen + warfarin
        assert resp.headers["content-language"] == "en"
    assert (tmp_path / "fb.sqlite3").is_file()


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.env: dict[str, str | None] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls.append((args, kwargs))
        self.env = {k: os.environ.get(k) for k in (CONFIG_ENV, INSECURE_ENV)}


def test_serve_workers_runs_the_factory_under_one_supervisor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             refs: Any) -> None:
    import uvicorn

    import cli

    rec = _Recorder()
    monkeypatch.setattr(uvicorn, "run", rec)
    path = _config_file(tmp_path)
    result = CliRunner().invoke(cli.main, ["serve", "--workers", "3", "--insecure-dev", "--port", "8765",
                                           "--config", str(path)])
    assert result.exit_code == 0, result.output
    (args, kwargs), = rec.calls
    assert args == ("checker.service:app_from_env",)
    assert kwargs["factory"] is True and kwargs["workers"] == 3 and kwargs["port"] == 8765
    assert rec.env == {CONFIG_ENV: str(path.resolve()), INSECURE_ENV: "1"}


def test_serve_workers_default_to_the_number_of_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      refs: Any) -> None:
    import uvicorn

    import cli

    rec = _Recorder()
    monkeypatch.setattr(uvicorn, "run", rec)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    result = CliRunner().invoke(cli.main, ["serve", "--insecure-dev", "--config", str(_config_file(tmp_path))])
    assert result.exit_code == 0, result.output
    assert rec.calls[0][1]["workers"] == 4


def test_serve_one_worker_serves_the_app_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refs: Any) -> None:
    import uvicorn

    import cli

    rec = _Recorder()
    monkeypatch.setattr(uvicorn, "run", rec)
    result = CliRunner().invoke(cli.main, ["serve", "--workers", "1", "--insecure-dev",
                                           "--config", str(_config_file(tmp_path))])
    assert result.exit_code == 0, result.output
    (args, kwargs), = rec.calls
    assert not isinstance(args[0], str) and "workers" not in kwargs


def test_serve_refuses_to_start_before_any_worker_when_a_referential_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import uvicorn

    import cli
    from checker import referentials

    root = Path(referentials.referentials_dir())
    altered = tmp_path / "referentials"
    shutil.copytree(root, altered)
    protocols = sorted((altered / "protocols").rglob("*.*"))
    target = next(p for p in protocols if p.is_file())
    target.write_bytes(target.read_bytes() + b"\n")  # checksum no longer matches the manifest
    monkeypatch.setenv("PERTINENCE_REFERENTIALS", str(altered))
    monkeypatch.setattr(referentials, "_default", None)
    rec = _Recorder()
    monkeypatch.setattr(uvicorn, "run", rec)
    result = CliRunner().invoke(cli.main, ["serve", "--workers", "2", "--insecure-dev",
                                           "--config", str(_config_file(tmp_path))])
    assert result.exit_code == 2 and "checksum" in result.output
    assert rec.calls == []


def test_app_is_warmed_up_before_serving_without_logging_cards(tmp_path: Path, refs: Any) -> None:
    """create_app(warm=True) checks the discovery example once (the rules' look-up structures built
    before the first EHR request) and leaves the card log empty."""
    import sqlite3

    from checker.service import create_app
    from checker.service.app import SERVING_GC_THRESHOLDS
    from tests.test_service import insecure_config

    cold = create_app(insecure_config(tmp_path), refs=refs).state.pertinence
    assert not cold._identities
    cold.store.close()
    app = create_app(insecure_config(tmp_path), refs=refs, warm=True)
    state = app.state.pertinence
    assert {k[0].text for k in state._identities} >= {"IBUPROFENE 400 mg comprimé", "WARFARINE 5 mg comprimé"}
    state.store.close()
    with sqlite3.connect(tmp_path / "fb.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0] == 0
    # what was loaded and warmed lives as long as the process: out of the collector's sight
    assert gc.get_freeze_count() > 0 and gc.get_threshold() == SERVING_GC_THRESHOLDS
