"""The sync scenarios driven from Python against the emulator: one-way, two-way, conflicts,
deletions (and the mass-delete guard), filters and modifications, the dry run and status."""

from __future__ import annotations

from pathlib import Path

import pytest

import exchange_sync as es
from exchange_sync.testing import Emulator

from conftest import ALICE, BOB, CAROL, DAVE, HUB, TARGET, by_name, editors_and_readers, make_config, name_of, names, unique_names


def open_all(service: es.SyncService) -> tuple[es.Folder, es.Folder, es.Folder, es.Folder, es.Folder]:
    f = service.folders
    return (
        f.public_folder(HUB),
        f.mailbox_folder(ALICE, TARGET),
        f.mailbox_folder(BOB, TARGET),
        f.mailbox_folder(CAROL, TARGET),
        f.mailbox_folder(DAVE, TARGET),
    )


def test_initial_sync_copies_the_hub_to_every_member_then_stays_quiet(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, editors_and_readers()))
    report = service.run_once()
    assert report.is_clean()
    group = report.groups[0]
    assert group.outcome == "synced"
    assert group.totals().created == 4 * 25
    hub, *members = open_all(service)
    for m in members:
        assert names(m) == names(hub)
        assert all(fi.synced for fi in m.items())
    again = service.run_once().groups[0]
    assert again.outcome == "synced" and again.totals().created == again.totals().updated == 0


def test_dry_run_plans_without_writing(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    planned = service.plan()
    group = planned.groups[0]
    assert group.outcome == "planned"
    assert group.totals().created == 25
    assert group.plan is not None and group.plan.count("- create ") == 25
    # Nothing is written anywhere: the target folder is not created, only announced.
    assert f"would create folder {TARGET} in {ALICE}" in group.plan
    with pytest.raises(es.NotFoundError):
        service.folders.mailbox_folder(ALICE, TARGET)


def test_one_way_reader_receives_hub_edits_and_its_own_edits_are_reverted(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(CAROL, "one_way")]))
    service.run_once()
    hub = service.folders.public_folder(HUB)
    carol = service.folders.mailbox_folder(CAROL, TARGET)
    target = unique_names(hub)[0]

    hub_item = by_name(hub, target)
    assert hub_item is not None
    hub.update(hub_item.id, {"job_title": "Head of Sales"})
    service.run_once()
    carol_item = by_name(carol, target)
    assert carol_item is not None and carol_item.item["job_title"] == "Head of Sales"

    carol.update(carol_item.id, {"job_title": "My own title"})
    report = service.run_once().groups[0]
    assert report.totals().reverted == 1
    reverted = by_name(carol, target)
    assert reverted is not None and reverted.item["job_title"] == "Head of Sales"
    assert by_name(hub, target) is not None


def test_two_way_editor_edits_and_new_items_reach_the_hub_and_the_others(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, editors_and_readers()))
    service.run_once()
    hub, alice, bob, carol, dave = open_all(service)
    target = unique_names(hub)[1]
    a = by_name(alice, target)
    assert a is not None
    alice.update(a.id, {"phone.mobile": "+1 555 0100"})
    new_id = alice.create(es.Item("contact", {"given_name": "Zoe", "surname": "Newcomer", "email1.address": "zoe@example.test"}))
    assert new_id
    service.run_once().raise_for_errors()
    for folder in (hub, bob, carol, dave):
        fi = by_name(folder, target)
        assert fi is not None and fi.item["phone.mobile"] == "+1 555 0100", folder.description
        zoe = by_name(folder, "Zoe Newcomer")
        assert zoe is not None and zoe.item["email1.address"] == "zoe@example.test", folder.description


def test_conflicting_edits_merge_field_by_field_with_a_conflict_record(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, editors_and_readers()))
    service.run_once()
    hub, alice, bob, carol, _ = open_all(service)
    target = unique_names(hub)[2]
    a, b = by_name(alice, target), by_name(bob, target)
    assert a is not None and b is not None
    alice.update(a.id, {"phone.mobile": "+1 555 0001", "department": "Field sales"})
    bob.update(b.id, {"phone.mobile": "+1 555 0002", "office": "Building 7"})
    report = service.run_once().groups[0]
    assert report.outcome == "synced"
    assert [c.field for c in report.conflicts] == ["phone.mobile"]

    [entry] = service.conflicts()
    assert entry.group == "contacts" and entry.field == "phone.mobile"
    values = {entry.winner.value} | {loser.value for loser in entry.losers}
    assert values == {"+1 555 0001", "+1 555 0002"}
    assert str(entry).count("+1 555 000") == 2
    assert service.conflicts("contacts")[0].entity == entry.entity
    for folder in (hub, alice, bob, carol):
        fi = by_name(folder, target)
        assert fi is not None
        assert (fi.item["department"], fi.item["office"]) == ("Field sales", "Building 7")
        assert fi.item["phone.mobile"] == entry.winner.value


def test_deletions_propagate_from_editors_and_are_reverted_on_readers(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, editors_and_readers()))
    service.run_once()
    # A quiet pass, so that every folder's sync state is past the copies' creation (see the
    # expected failure below).
    service.run_once()
    hub, alice, bob, carol, dave = open_all(service)
    gone, kept = unique_names(hub)[3], unique_names(hub)[4]

    b = by_name(bob, gone)
    assert b is not None
    bob.delete(b.id)
    c = by_name(carol, kept)
    assert c is not None
    carol.delete(c.id)
    service.run_once().raise_for_errors()

    for folder in (hub, alice, bob, carol, dave):
        assert by_name(folder, gone) is None, folder.description
        assert by_name(folder, kept) is not None, folder.description
    with pytest.raises(es.NotFoundError):
        bob.get(b.id)


def test_a_deletion_right_after_the_initial_sync_propagates(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    service.run_once()
    hub = service.folders.public_folder(HUB)
    alice = service.folders.mailbox_folder(ALICE, TARGET)
    gone = unique_names(hub)[0]
    a = by_name(alice, gone)
    assert a is not None
    alice.delete(a.id)
    service.run_once().raise_for_errors()
    assert by_name(hub, gone) is None


def test_the_mass_delete_guard_stops_a_group_until_an_admin_confirms(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way"), es.Member(CAROL, "one_way")]))
    service.run_once()
    hub = service.folders.public_folder(HUB)
    for fi in hub.items():
        hub.delete(fi.id)

    report = service.run_once()
    assert report.mass_delete_stopped()
    assert report.groups[0].outcome == "stopped_by_mass_delete_guard"
    with pytest.raises(es.MassDeleteError) as caught:
        report.raise_for_errors()
    assert caught.value.kind == "mass_delete" and caught.value.retryable is False
    assert caught.value.group == "contacts"
    assert len(service.folders.mailbox_folder(ALICE, TARGET).items()) == 25
    assert service.status()[0].stopped_by_mass_delete_guard

    confirmed = service.run_once(allow_mass_delete=True)
    assert confirmed.is_clean()
    assert service.folders.mailbox_folder(ALICE, TARGET).items() == []
    assert service.folders.mailbox_folder(CAROL, TARGET).items() == []


def test_filters_and_modifications_shape_what_a_reader_receives(emulator: Emulator) -> None:
    reader = es.Member(
        CAROL,
        "one_way",
        filter=es.Filter.category("VIP"),
        modifications=[es.Modification.clear_field("phone.mobile"), es.Modification.add_category("From HQ")],
    )
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way"), reader]))
    service.run_once()
    hub = service.folders.public_folder(HUB)
    carol = service.folders.mailbox_folder(CAROL, TARGET)
    assert carol.items() == []
    assert len(service.folders.mailbox_folder(ALICE, TARGET).items()) == 25

    vip = by_name(hub, unique_names(hub)[5])
    assert vip is not None and "phone.mobile" in vip.item
    hub.update(vip.id, categories=["VIP"])
    service.run_once().raise_for_errors()

    [copy] = carol.items()
    assert name_of(copy.item) == name_of(vip.item)
    assert "phone.mobile" not in copy.item
    assert copy.item.categories == ["From HQ", "VIP"]


def test_status_shows_every_folder_of_a_group(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, editors_and_readers()))
    before = service.status()[0]
    assert [m.member for m in before.members] == ["hub", ALICE, BOB, CAROL, DAVE]
    assert not any(m.initialized for m in before.members)
    service.run_once()
    [status] = service.status()
    assert status.group == "contacts"
    assert [m.direction for m in status.members] == ["hub", "two_way", "two_way", "one_way", "one_way"]
    assert all(m.initialized and m.copies == 25 and m.last_sync is not None for m in status.members)
    assert status.last_report is not None and status.last_report.outcome == "synced"


def test_sqlite_state_survives_a_new_service(emulator: Emulator, tmp_path: Path) -> None:
    state = str(tmp_path / "state.sqlite")
    first = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")], state=state))
    first.run_once()
    # One writer per state file: a second service is refused while the first holds it.
    with pytest.raises(es.StateError):
        es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")], state=state))
    del first
    second = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")], state=state))
    report = second.run_once().groups[0]
    assert report.totals().created == 0
    assert len(second.folders.mailbox_folder(ALICE, TARGET).items()) == 25


def test_real_time_service_started_and_stopped_from_python(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way"), es.Member(CAROL, "one_way")]))
    events = service.events()
    seen: list[es.ProgressEvent] = []
    service.start(on_event=seen.append)
    assert service.running
    first = None
    while first is None or first.kind != "pass_finished":
        first = events.next(timeout=30)
        assert first is not None, "no pass finished"
    assert first.report is not None and first.report.outcome == "synced"

    hub = service.folders.public_folder(HUB)
    carol = service.folders.mailbox_folder(CAROL, TARGET)
    target = unique_names(hub)[0]
    fi = by_name(hub, target)
    assert fi is not None
    hub.update(fi.id, {"job_title": "Chief Realtime Officer"})
    while True:
        copy = by_name(carol, target)
        if copy is not None and copy.item.get("job_title") == "Chief Realtime Officer":
            break
        assert events.next(timeout=30) is not None, "the edit was not synced"
    service.stop()
    assert not service.running
    kinds = [e.kind for e in seen]
    assert kinds[0] == "service_started" and kinds[-1] == "service_stopped"
    assert "pass_finished" in kinds
    rest = list(events)
    assert rest and rest[-1].kind == "service_stopped"
