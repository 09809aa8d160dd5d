"""The quickstart, in Python: one sync group on the public folder ``Company Contacts`` with two
editors (two-way) and two readers (one-way), kept in sync in real time. It plays a short story
and prints what happens, with timings:

1. an edit on the public folder reaches all four members;
2. an editor's edit (as made from a phone) reaches the public folder and the others;
3. a reader's edit is reverted;
4. two editors edit the same contact: merged field by field, with a conflict record;
5. a deleted contact disappears everywhere.

By default it starts the EWS emulator in process (demo tenant contoso.test). To point it at a
real server instead, set ``EXCHANGE_SYNC_URL`` (the EWS URL), ``EXCHANGE_SYNC_USER`` and
``EXCHANGE_SYNC_PASSWORD`` (an account with the ApplicationImpersonation role and owner rights on
the public folder), optionally ``EXCHANGE_SYNC_PUBLIC_FOLDER`` (default ``Company Contacts``), and
``EXCHANGE_SYNC_EDITORS`` / ``EXCHANGE_SYNC_READERS`` (two comma-separated addresses each).

Run it with ``python examples/quickstart.py`` once the package is installed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

import exchange_sync as es
from exchange_sync.testing import Emulator

TARGET = "contacts/Company Contacts"
"""The folder in every member mailbox (created when missing)."""


@dataclass
class Setup:
    """Where the story runs."""

    connection: es.Connection
    public_folder: str
    editors: List[str]
    readers: List[str]
    emulator: Optional[Emulator] = None


def two(var: str) -> List[str]:
    """Two comma-separated addresses from an environment variable."""
    values = [v.strip() for v in os.environ.get(var, "").split(",") if v.strip()]
    if len(values) != 2:
        raise SystemExit(f"{var} needs two comma-separated addresses")
    return values


def setup() -> Setup:
    """The emulator, or the real server the environment names."""
    url = os.environ.get("EXCHANGE_SYNC_URL")
    if url:
        return Setup(
            connection=es.Connection(
                "exchange", url, username=os.environ["EXCHANGE_SYNC_USER"], password_env="EXCHANGE_SYNC_PASSWORD"
            ),
            public_folder=os.environ.get("EXCHANGE_SYNC_PUBLIC_FOLDER", "Company Contacts"),
            editors=two("EXCHANGE_SYNC_EDITORS"),
            readers=two("EXCHANGE_SYNC_READERS"),
        )
    emulator = Emulator(contacts=25)
    print(f"started the EWS emulator at {emulator.url} (tenant contoso.test)")
    return Setup(
        connection=emulator.connection("exchange"),
        public_folder="Company Contacts",
        editors=["alice@contoso.test", "bob@contoso.test"],
        readers=["carol@contoso.test", "dave@contoso.test"],
        emulator=emulator,
    )


def config(s: Setup) -> es.Config:
    """One group: the public folder, two editors, two readers, matched by e-mail address."""
    members = [es.Member(m, "two_way") for m in s.editors] + [es.Member(m, "one_way") for m in s.readers]
    group = es.Group(
        "company-contacts",
        "exchange",
        public_folder=s.public_folder,
        target=TARGET,
        members=members,
        match_key=["email1.address"],
    )
    service = es.ServiceSettings(state="memory", debounce_ms=50, poll_interval_secs=2)
    return es.Config(connections=[s.connection], groups=[group], service=service)


def name_of(fi: es.FolderItem) -> str:
    """A contact's name: its display name, or given name and surname (display names are derived
    by the server and not part of the synced content)."""
    display = fi.item.get("display_name")
    if display is not None:
        return str(display)
    return " ".join(str(fi.item.get(f)) for f in ("given_name", "surname") if fi.item.get(f) is not None)


def find(folder: es.Folder, name: str) -> Optional[es.FolderItem]:
    """The item named ``name`` in ``folder``."""
    for fi in folder.items():
        if name_of(fi) == name:
            return fi
    return None


def field_of(folder: es.Folder, name: str, field: str) -> Optional[str]:
    """The value of ``field`` on the item named ``name`` (``None``: no item, or no value)."""
    fi = find(folder, name)
    if fi is None:
        return None
    v = fi.item.get(field)
    return None if v is None else str(v)


def until(since: float, what: str, check: Callable[[], bool]) -> float:
    """Polls ``check`` until it holds; returns how long that took from ``since``, in seconds."""
    deadline = since + 30
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting: {what}")
        time.sleep(0.025)
    return time.monotonic() - since


def all_have(folders: List[es.Folder], name: str, field: str, expected: Optional[str]) -> bool:
    """Whether every folder has the item named ``name`` with ``field`` = ``expected``."""
    return all(find(f, name) is not None and field_of(f, name, field) == expected for f in folders)


def ms(seconds: float) -> str:
    """Seconds as right-aligned milliseconds."""
    return f"{seconds * 1000:5.0f} ms"


def id_in(folder: es.Folder, name: str) -> str:
    """The id of the item named ``name`` in ``folder``."""
    fi = find(folder, name)
    if fi is None:
        raise SystemExit(f"{name} not found in {folder.description}")
    return fi.id


def main() -> None:
    """Plays the story."""
    logging.basicConfig(level=os.environ.get("EXCHANGE_SYNC_LOG", "ERROR").upper())
    started = time.monotonic()
    s = setup()
    service = es.SyncService(config(s))
    events = service.events()

    print(f"\n== initial sync: {s.public_folder} -> 2 editors (two-way) and 2 readers (one-way)")
    service.start()
    for event in events:
        if event.kind == "pass_finished" and event.report is not None:
            if event.report.outcome != "synced":
                raise SystemExit(f"initial sync failed: {event.report}")
            print(f"   {event.report}")
            break

    folders = service.folders
    hub = folders.public_folder(s.public_folder)
    members = [folders.mailbox_folder(m, TARGET, create=True) for m in s.editors + s.readers]
    alice, bob, carol = members[0], members[1], members[2]
    everyone = [hub, *members]
    all_names = sorted(name_of(fi) for fi in hub.items())
    names = [n for n in all_names if all_names.count(n) == 1]
    if len(names) < 5:
        raise SystemExit("the public folder needs at least five contacts with distinct names for the story")

    print(f"\n== 1. someone edits {names[0]} in the public folder")
    t = time.monotonic()
    hub.update(id_in(hub, names[0]), {"job_title": "Head of Sales"})
    took = until(t, "the job title in every mailbox", lambda: all_have(members, names[0], "job_title", "Head of Sales"))
    print(f"   {ms(took)} the new job title is in all four mailboxes")

    print(f"\n== 2. {s.editors[0]} (editor) changes {names[1]}'s mobile number on a phone")
    t = time.monotonic()
    alice.update(id_in(alice, names[1]), {"phone.mobile": "+1 555 0100"})
    took = until(t, "the mobile number everywhere", lambda: all_have(everyone, names[1], "phone.mobile", "+1 555 0100"))
    print(f"   {ms(took)} the public folder and the three other mailboxes have it")

    print(f"\n== 3. {s.readers[0]} (reader) changes {names[2]}'s company")
    original = field_of(hub, names[2], "company")
    t = time.monotonic()
    carol.update(id_in(carol, names[2]), {"company": "My own company"})
    took = until(t, "the revert", lambda: field_of(carol, names[2], "company") == original)
    print(f"   {ms(took)} reverted: {s.readers[0]}'s copy says {original!r} again, like the public folder")

    print(f"\n== 4. both editors change {names[3]} at the same time")
    t = time.monotonic()
    a, b = id_in(alice, names[3]), id_in(bob, names[3])
    edit_bob = threading.Thread(target=lambda: bob.update(b, {"phone.mobile": "+1 555 0002", "office": "Building 7"}))
    edit_bob.start()
    alice.update(a, {"phone.mobile": "+1 555 0001", "department": "Field sales"})
    edit_bob.join()
    took = until(
        t,
        "the merge",
        lambda: all_have(everyone, names[3], "department", "Field sales")
        and all_have(everyone, names[3], "office", "Building 7")
        and bool(service.conflicts()),
    )
    kept = field_of(hub, names[3], "phone.mobile")
    took = max(took, until(t, "one mobile number everywhere", lambda: all_have(everyone, names[3], "phone.mobile", kept)))
    print(f"   {ms(took)} merged field by field: department from one, office from the other, mobile {kept!r} kept")
    for entry in service.conflicts():
        print(f"   conflict log: {entry}")

    print(f"\n== 5. {s.editors[1]} (editor) deletes {names[4]}")
    t = time.monotonic()
    bob.delete(id_in(bob, names[4]))
    took = until(t, "the deletion everywhere", lambda: all(find(f, names[4]) is None for f in everyone))
    print(f"   {ms(took)} gone from the public folder and every mailbox")

    service.stop()
    for status in service.status():
        for m in status.members:
            print(f"   status: {m.folder:<55} {m.direction:<8} {m.copies:>3} copies")
    if s.emulator is not None:
        s.emulator.stop()
    print(f"\ndone in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
