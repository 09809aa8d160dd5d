"""The GIL is released during long operations: another Python thread keeps running."""

from __future__ import annotations

import threading
from typing import Callable, List

import exchange_sync as es
from exchange_sync.testing import Emulator

from conftest import ALICE, BOB, make_config


def ticks_during(operation: Callable[[], object]) -> int:
    """How often a Python thread ran while `operation` ran on this thread."""
    ticks: List[int] = []
    inside = threading.Event()
    done = threading.Event()
    started = threading.Event()

    def tick() -> None:
        started.set()
        while not done.is_set():
            if inside.is_set():
                ticks.append(1)
            # A short sleep releases the GIL too; a thread blocked on the GIL would not get here.
            done.wait(0.001)

    thread = threading.Thread(target=tick)
    thread.start()
    started.wait()
    inside.set()
    try:
        operation()
    finally:
        inside.clear()
        done.set()
        thread.join()
    return len(ticks)


def test_another_thread_runs_during_a_long_sync_pass() -> None:
    # Each EWS answer takes 20 ms: the initial sync of two members takes many of them.
    with Emulator(contacts=25, latency_ms=20) as emu:
        service = es.SyncService(make_config(emu, [es.Member(ALICE, "two_way"), es.Member(BOB, "two_way")]))
        assert ticks_during(service.run_once) > 5


def test_another_thread_runs_while_waiting_for_events() -> None:
    with Emulator(contacts=1) as emu:
        service = es.SyncService(make_config(emu, [es.Member(ALICE, "two_way")]))
        events = service.events()
        # No service runs: the wait ends by its timeout, with the GIL released all along.
        assert ticks_during(lambda: events.next(timeout=0.3)) > 5


def test_a_service_running_in_the_background_leaves_this_thread_free() -> None:
    with Emulator(contacts=25, latency_ms=5) as emu:
        service = es.SyncService(make_config(emu, [es.Member(ALICE, "two_way")]))
        service.start()
        events = service.events()
        counted = 0
        # This thread does pure Python work while the service syncs on the runtime's threads.
        while True:
            counted += sum(range(1000)) > 0
            event = events.next(timeout=0)
            if event is not None and event.kind == "pass_finished":
                break
        service.stop()
        assert counted > 0
