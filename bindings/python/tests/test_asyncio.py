"""The asyncio API under a running event loop: awaitables that do not block the loop."""

from __future__ import annotations

import asyncio
from typing import List

import exchange_sync as es
from exchange_sync.testing import Emulator

from conftest import ALICE, CAROL, HUB, TARGET, make_config, name_of, unique_names


async def ticker(ticks: List[float], stop: asyncio.Event) -> None:
    """Counts turns of the event loop until told to stop."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        ticks.append(loop.time())
        await asyncio.sleep(0.001)


def test_a_sync_story_with_awaitables_keeps_the_loop_turning() -> None:
    async def main() -> None:
        with Emulator(contacts=25, latency_ms=5) as emu:
            ticks: List[float] = []
            stop = asyncio.Event()
            tick_task = asyncio.create_task(ticker(ticks, stop))
            config = make_config(emu, [es.Member(ALICE, "two_way"), es.Member(CAROL, "one_way")])
            service = await es.SyncService.connect_async(config)
            before = len(ticks)
            plan = await service.plan_async()
            assert plan.groups[0].outcome == "planned"
            events: List[es.ProgressEvent] = []
            report = await service.run_once_async(on_event=events.append)
            during = len(ticks) - before
            assert report.is_clean() and report.groups[0].totals().created == 50
            kinds = [e.kind for e in events]
            assert kinds[:2] == ["pass_started", "planned"] and kinds[-1] == "pass_finished", kinds
            assert set(kinds[2:-1]) == {"written"}, kinds
            # The writes count up to the planned total, batch after batch.
            written = [e.written or 0 for e in events if e.kind == "written"]
            assert written == sorted(written) and written[-1] == events[1].actions == 50, written
            # The loop kept turning while the passes ran on the runtime (the emulator answers each
            # request after 5 ms, so the passes took many turns of a 1 ms ticker).
            assert during > 1

            folders = service.folders
            hub, alice = await asyncio.gather(
                folders.public_folder_async(HUB), folders.mailbox_folder_async(ALICE, TARGET)
            )
            hub_items, alice_items = await asyncio.gather(hub.items_async(), alice.items_async())
            assert len(hub_items) == len(alice_items) == 25
            name = unique_names(hub)[0]
            [fi] = [i for i in alice_items if name_of(i.item) == name]
            await alice.update_async(fi.id, {"job_title": "Async Officer"})
            new_id = await alice.create_async(es.Item("contact", {"given_name": "Ada", "surname": "Async"}))
            assert name_of((await alice.get_async(new_id)).item) == "Ada Async"
            await service.run_once_async()
            on_hub = {name_of(i.item): i for i in await hub.items_async()}
            assert on_hub[name].item["job_title"] == "Async Officer"
            assert "Ada Async" in on_hub
            await hub.delete_async(on_hub["Ada Async"].id)
            status = await service.status_async()
            assert status[0].members[0].member == "hub"
            assert await service.conflicts_async() == []
            stop.set()
            await tick_task

    asyncio.run(main())


def test_run_async_with_an_async_event_iterator_until_shutdown() -> None:
    async def main() -> None:
        with Emulator(contacts=10) as emu:
            service = await es.SyncService.connect_async(make_config(emu, [es.Member(ALICE, "two_way")]))
            events = service.events()
            running = asyncio.ensure_future(service.run_async())
            kinds: List[str] = []
            async for event in events:
                kinds.append(event.kind)
                if event.kind == "pass_finished":
                    assert event.report is not None and event.report.outcome == "synced"
                    service.shutdown()
            await running
            assert kinds[0] == "service_started"
            assert kinds[-1] == "service_stopped"
            assert "pass_finished" in kinds

    asyncio.run(main())


def test_cancelling_run_async_shuts_the_service_down() -> None:
    async def main() -> None:
        with Emulator(contacts=5) as emu:
            service = await es.SyncService.connect_async(make_config(emu, [es.Member(ALICE, "two_way")]))
            events = service.events()
            running = asyncio.ensure_future(service.run_async())
            first = await events.next_async(timeout=30)
            assert first is not None and first.kind == "service_started"
            running.cancel()
            kinds = [e.kind async for e in events]
            assert kinds[-1] == "service_stopped"

    asyncio.run(main())


def test_errors_of_awaitables_are_the_same_exceptions() -> None:
    async def main() -> None:
        with Emulator(contacts=5) as emu:
            folders = await es.EwsFolders.connect_async(make_config(emu, [es.Member(ALICE, "two_way")]))
            try:
                await folders.public_folder_async("No Such Folder")
            except es.NotFoundError as e:
                assert e.kind == "not_found" and "No Such Folder" in str(e)
            else:
                raise AssertionError("no NotFoundError")

    asyncio.run(main())
