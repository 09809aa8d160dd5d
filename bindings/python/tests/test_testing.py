"""exchange_sync.testing: the emulator in process and as a subprocess; item scripting on it."""

from __future__ import annotations

import datetime

import pytest

import exchange_sync as es
from exchange_sync.testing import Emulator, EmulatorNotFound, EmulatorProcess

from conftest import ALICE, HUB, make_config


def test_in_process_emulator_serves_the_demo_tenant() -> None:
    with Emulator(contacts=3) as emu:
        assert emu.running and emu.url.startswith("http://127.0.0.1:")
        assert emu.admin == "sync-admin@contoso.test"
        assert "alice@contoso.test" in emu.users
        folders = es.EwsFolders(es.Config(connections=[emu.connection()]))
        root = folders.public_folder("")
        assert {"Company Contacts", "Company Calendar"} <= {f.name for f in root.subfolders()}
        assert len(folders.public_folder(HUB).items()) == 3
    assert not emu.running


def test_subprocess_emulator() -> None:
    try:
        proc = EmulatorProcess(contacts=4)
    except EmulatorNotFound:
        pytest.skip("the ews-emulator binary is not built (test.sh builds it)")
    with proc:
        assert proc.running
        service = es.SyncService(make_config(proc, [es.Member(ALICE, "two_way")]))
        assert service.run_once().groups[0].totals().created == 4
    assert not proc.running


def test_items_round_trip_with_every_value_type(emulator: Emulator) -> None:
    folders = es.EwsFolders(es.Config(connections=[emulator.connection()]))
    contacts = folders.mailbox_folder(ALICE, "contacts")
    birthday = datetime.datetime(1990, 5, 17, tzinfo=datetime.timezone.utc)
    item = es.Item(
        "contact",
        {"given_name": "Grace", "surname": "Script", "email1.address": "grace@example.test", "birthday": birthday},
        body="Met at the conference.",
        categories=["Customers"],
    )
    item["company"] = "Contoso"
    assert "company" in item and item["company"] == "Contoso"
    item_id = contacts.create(item)
    got = contacts.get(item_id)
    assert got.id == item_id and got.version and not got.synced
    assert got.item["surname"] == "Script" and got.item["company"] == "Contoso"
    assert got.item.get("birthday") == birthday
    assert got.item.body is not None and "conference" in got.item.body
    assert got.item.categories == ["Customers"]
    assert got.item.same_content(got.item)

    contacts.update(item_id, {"company": None, "job_title": "CTO"}, body="Updated.", categories=["A", "B"])
    again = contacts.get(item_id)
    assert "company" not in again.item and again.item["job_title"] == "CTO"
    assert again.item.body is not None and again.item.body.startswith("Updated.")
    assert again.item.categories == ["A", "B"]
    assert again.version != got.version

    contacts.delete(item_id)
    assert all(fi.id != item_id for fi in contacts.items())


def test_bad_field_values_raise_type_error() -> None:
    with pytest.raises(TypeError):
        es.Item("contact", {"display_name": 3.5})  # type: ignore[dict-item]
    item = es.Item()
    with pytest.raises(KeyError):
        item["missing"]
    with pytest.raises(KeyError):
        del item["missing"]


def test_injected_faults_are_retried(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    emulator.inject("server_busy")
    emulator.inject("service_unavailable")
    report = service.run_once()
    assert report.is_clean() and report.groups[0].totals().created == 25
