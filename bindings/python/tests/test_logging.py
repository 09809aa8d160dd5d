"""Rust tracing events arrive in Python logging, on loggers named after the Rust target."""

from __future__ import annotations

import logging
from typing import Iterator

import pytest

import exchange_sync as es
from exchange_sync.testing import Emulator

from conftest import ALICE, make_config


@pytest.fixture
def debug_level() -> Iterator[None]:
    es.set_log_level("debug")
    yield
    es.set_log_level("info")


def test_pass_reports_are_logged_on_the_service_logger(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    service.run_once()
    records = [r for r in caplog.records if r.name == "exchange_sync.service"]
    summary = [r for r in records if "group contacts: Synced" in r.getMessage()]
    assert summary, [r.getMessage() for r in records]
    record = summary[0]
    assert record.levelno == logging.INFO
    assert record.pathname.endswith("service.rs") and record.lineno > 0
    assert getattr(record, "rust_target") == "exchange_sync::service"
    # Fields of the event are part of the message and available separately.
    engine = [r for r in caplog.records if r.name == "exchange_sync_core.engine"]
    assert any(getattr(r, "rust_fields", {}).get("actions") == "25" for r in engine), [r.getMessage() for r in engine]


def test_python_logger_levels_filter_rust_events(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("exchange_sync_core").setLevel(logging.ERROR)
    try:
        service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
        service.run_once()
    finally:
        logging.getLogger("exchange_sync_core").setLevel(logging.NOTSET)
    assert not [r for r in caplog.records if r.name.startswith("exchange_sync_core")]
    assert [r for r in caplog.records if r.name == "exchange_sync.service"]


def test_debug_events_come_only_when_asked_for(
    emulator: Emulator, caplog: pytest.LogCaptureFixture, debug_level: None
) -> None:
    caplog.set_level(logging.DEBUG)
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    service.run_once()
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    caplog.clear()
    es.set_log_level("info")
    service.run_once()
    assert not any(r.levelno == logging.DEBUG for r in caplog.records)


def test_unknown_levels_are_refused() -> None:
    with pytest.raises(ValueError):
        es.set_log_level("loud")  # type: ignore[arg-type]


def test_warnings_carry_their_level(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "exchange_sync.service"]
    assert any("plain http" in r.getMessage() for r in warnings)
