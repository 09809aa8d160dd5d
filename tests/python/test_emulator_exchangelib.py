"""exchangelib, an independent EWS client, against the ews-emulator binary.

Run from the repository root after `cargo build -p ews-emulator`:

    pip install -r tests/python/requirements.txt
    pytest tests/python/test_emulator_exchangelib.py

The binary is taken from $EWS_EMULATOR_BIN, else $CARGO_TARGET_DIR or target/ (debug, then
release). When $EWS_TRACE_DIR is set, the emulator dumps what it receives and answers there.
"""

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from exchangelib import (
    BASIC,
    DELEGATE,
    IMPERSONATION,
    UTC,
    Account,
    Configuration,
    Contact,
    Credentials,
    EWSDate,
    EWSDateTime,
    Version,
)
from exchangelib.errors import ErrorAccessDenied, ErrorInvalidIdMalformed, ErrorInvalidSyncStateData
from exchangelib.indexed_properties import EmailAddress, PhoneNumber, PhysicalAddress
from exchangelib.items import CalendarItem
from exchangelib.properties import ENTRY_ID, EWS_ID, HEX_ENTRY_ID, AlternateId, CreatedEvent
from exchangelib.fields import MONDAY
from exchangelib.recurrence import Recurrence, WeeklyPattern
from exchangelib.version import EXCHANGE_2016

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "exchange-sync"
DEFAULT_CONTACTS = 100


def emulator_binary():
    if os.environ.get("EWS_EMULATOR_BIN"):
        return Path(os.environ["EWS_EMULATOR_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    for profile in ("debug", "release"):
        candidate = target / profile / "ews-emulator"
        if candidate.exists():
            return candidate
    pytest.skip("ews-emulator is not built (cargo build -p ews-emulator)")


@pytest.fixture(scope="module")
def endpoint():
    proc = subprocess.Popen(
        [str(emulator_binary()), "--listen", "127.0.0.1:0", "--heartbeat-secs", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline().strip()
        assert first.startswith("EWS endpoint: http://127.0.0.1:"), first
        yield first.split(": ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def account(endpoint, mailbox, login="sync-admin@contoso.test"):
    """An exchangelib account: Basic auth, explicit version, impersonation."""
    config = Configuration(
        service_endpoint=endpoint,
        credentials=Credentials(login, PASSWORD),
        auth_type=BASIC,
        version=Version(build=EXCHANGE_2016),
        max_connections=4,
    )
    return Account(mailbox, config=config, autodiscover=False, access_type=IMPERSONATION)


def rich_contact(folder, given, surname):
    return Contact(
        folder=folder,
        given_name=given,
        surname=surname,
        display_name=f"{given} {surname}",
        company_name="Fabrikam",
        email_addresses=[
            EmailAddress(label="EmailAddress1", email=f"{given.lower()}@fabrikam.example"),
            EmailAddress(label="EmailAddress2", email=f"{given.lower()}@home.example"),
        ],
        phone_numbers=[PhoneNumber(label="MobilePhone", phone_number="+41 79 123 45 67")],
        physical_addresses=[PhysicalAddress(label="Business", street="Bahnhofstraße 1", city="Zürich", zipcode="8001")],
        body="Met at the fair — prefers e-mail.",
        categories=["Customer"],
    )


def test_connects_and_lists_mailbox_and_public_folders(endpoint):
    alice = account(endpoint, "alice@contoso.test")
    assert alice.contacts.name == "Contacts"
    assert alice.contacts.all().count() == 0
    company = alice.public_folders_root / "Company Contacts"
    contacts = list(company.all())
    assert len(contacts) == DEFAULT_CONTACTS
    assert any(not c.display_name.isascii() for c in contacts), "names with accents"
    assert any(len(c.email_addresses or []) > 1 for c in contacts), "several e-mail addresses"
    assert all(c.physical_addresses for c in contacts)
    events = list((alice.public_folders_root / "Company Calendar").all())
    assert len(events) >= 3
    assert sum(1 for e in events if isinstance(e, CalendarItem) and e.is_recurring) == 1


def crud_round(folder):
    one = rich_contact(folder, "Zoë", "Müller-Crud")
    one.save()
    bulk = folder.account.bulk_create(folder=folder, items=[rich_contact(folder, f"Bulk{i}", "Ångström") for i in range(5)])
    assert all(r.id for r in bulk)
    read = folder.get(id=one.id)
    assert read.given_name == "Zoë"
    assert read.physical_addresses[0].city == "Zürich"
    assert {e.email for e in read.email_addresses} == {"zoë@fabrikam.example", "zoë@home.example"}
    assert str(read.body) == "Met at the fair — prefers e-mail."
    old_key = read.changekey
    read.job_title = "Head of Purchasing"
    read.save(update_fields=["job_title"])
    assert read.changekey != old_key
    assert folder.get(id=one.id).job_title == "Head of Purchasing"
    assert folder.filter(surname="Ångström").count() == 5
    folder.filter(surname="Ångström").delete()
    read.delete()
    assert folder.filter(surname="Ångström").count() == 0
    assert folder.filter(surname="Müller-Crud").count() == 0


def test_crud_in_a_mailbox(endpoint):
    crud_round(account(endpoint, "bob@contoso.test").contacts)


def test_crud_in_the_public_folder_and_reviewer_rights(endpoint):
    admin = account(endpoint, "sync-admin@contoso.test")
    folder = admin.public_folders_root / "Company Contacts"
    crud_round(folder)
    assert folder.all().count() == DEFAULT_CONTACTS
    alice_view = account(endpoint, "alice@contoso.test").public_folders_root / "Company Contacts"
    with pytest.raises(ErrorAccessDenied):
        rich_contact(alice_view, "Not", "Allowed").save()


def test_sync_items_across_calls(endpoint):
    carol = account(endpoint, "carol@contoso.test")
    folder = carol.contacts
    for i in range(7):
        Contact(folder=folder, given_name=f"S{i}", surname="Sync", display_name=f"S{i} Sync").save()
    first = list(folder.sync_items(max_changes_returned=3))
    assert [kind for kind, _ in first] == ["create"] * 7
    state = folder.item_sync_state
    assert state
    assert list(folder.sync_items()) == []
    edited = first[0][1]
    edited.job_title = "Edited"
    edited.save(update_fields=["job_title"])
    first[1][1].delete()
    second = list(folder.sync_items())
    kinds = sorted(kind for kind, _ in second)
    assert kinds == ["delete", "update"]
    assert folder.item_sync_state != state


def test_streaming_subscription_sees_a_change(endpoint):
    dave = account(endpoint, "dave@contoso.test")
    folder = dave.contacts
    subscription = folder.subscribe_to_streaming()

    def change_soon():
        time.sleep(1)
        Contact(folder=folder, given_name="Streamed", surname="Change", display_name="Streamed Change").save()

    writer = threading.Thread(target=change_soon)
    writer.start()
    events = []
    for notification in folder.get_streaming_events(subscription, connection_timeout=1, max_notifications_returned=1):
        events.extend(notification.events)
    writer.join()
    folder.unsubscribe(subscription)
    created = [e for e in events if isinstance(e, CreatedEvent)]
    assert created, events
    assert folder.get(id=created[0].item_id.id).given_name == "Streamed"


def test_connects_without_naming_a_version(endpoint):
    """exchangelib's default: guess the version (a ConvertId of a dummy id, read for the
    ServerVersionInfo header, whatever the answer)."""
    config = Configuration(
        service_endpoint=endpoint,
        credentials=Credentials("alice@contoso.test", PASSWORD),
        auth_type=BASIC,
    )
    alice = Account("alice@contoso.test", config=config, autodiscover=False, access_type=DELEGATE)
    assert alice.version.build is not None
    assert alice.version.build.major_version == 15
    assert alice.calendar.total_count is not None


def test_convert_id_between_formats_and_refuses_invalid_ids(endpoint):
    alice = account(endpoint, "alice@contoso.test")
    item = CalendarItem(
        account=alice,
        folder=alice.calendar,
        subject="Convert me",
        start=EWSDateTime(2026, 5, 4, 9, 0, tzinfo=UTC),
        end=EWSDateTime(2026, 5, 4, 10, 0, tzinfo=UTC),
    ).save()
    source = AlternateId(id=item.id, format=EWS_ID, mailbox="alice@contoso.test")
    (hex_id,) = list(alice.protocol.convert_ids([source], destination_format=HEX_ENTRY_ID))
    assert hex_id.format == HEX_ENTRY_ID and all(c in "0123456789ABCDEF" for c in hex_id.id)
    back = AlternateId(id=hex_id.id, format=HEX_ENTRY_ID, mailbox="alice@contoso.test")
    (ews_id,) = list(alice.protocol.convert_ids([back], destination_format=EWS_ID))
    assert ews_id.id == item.id
    (entry_id,) = list(alice.protocol.convert_ids([source], destination_format=ENTRY_ID))
    assert entry_id.id != item.id
    bogus = AlternateId(id="DUMMY", format=EWS_ID, mailbox="alice@contoso.test")
    (answer,) = list(alice.protocol.convert_ids([bogus], destination_format=ENTRY_ID))
    assert isinstance(answer, ErrorInvalidIdMalformed)


def test_invalid_sync_state_raises_its_own_error(endpoint):
    alice = account(endpoint, "alice@contoso.test")
    with pytest.raises(ErrorInvalidSyncStateData):
        list(alice.contacts.sync_items(sync_state="bm90IGEgc3luYyBzdGF0ZQ=="))


def test_occurrences_are_created_moved_and_cancelled(endpoint):
    bob = account(endpoint, "bob@contoso.test")
    master = CalendarItem(
        account=bob,
        folder=bob.calendar,
        subject="Weekly sync",
        location="Room 1",
        start=EWSDateTime(2026, 5, 4, 9, 0, tzinfo=UTC),
        end=EWSDateTime(2026, 5, 4, 9, 30, tzinfo=UTC),
        recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=[MONDAY]), start=EWSDate(2026, 5, 4), number=4),
    ).save()
    window = dict(start=EWSDateTime(2026, 5, 1, tzinfo=UTC), end=EWSDateTime(2026, 6, 1, tzinfo=UTC))
    shown = list(bob.calendar.view(**window))
    assert [o.start.day for o in shown] == [4, 11, 18, 25]
    assert all(o.type == "Occurrence" for o in shown)

    # Move the second occurrence to Tuesday, another room; cancel the third.
    second = bob.calendar.get(id=master.id, changekey=master.changekey).occurrence(index=2)
    second.refresh()
    second.start = EWSDateTime(2026, 5, 12, 14, 0, tzinfo=UTC)
    second.end = EWSDateTime(2026, 5, 12, 15, 0, tzinfo=UTC)
    second.location = "Room 7"
    second.save(update_fields=["start", "end", "location"])
    third = master.occurrence(index=3)
    third.refresh()
    third.delete()

    shown = list(bob.calendar.view(**window))
    assert [(o.start.day, o.location, o.type) for o in shown] == [
        (4, "Room 1", "Occurrence"),
        (12, "Room 7", "Exception"),
        (25, "Room 1", "Occurrence"),
    ]
    master.refresh()
    assert [d.start.day for d in master.deleted_occurrences] == [18]
    (moved,) = master.modified_occurrences
    assert (moved.start.day, moved.original_start.day) == (12, 11)
    # From an occurrence back to its master.
    exception = shown[1]
    again = exception.recurring_master()
    again.refresh()
    assert again.id == master.id and again.type == "RecurringMaster"
