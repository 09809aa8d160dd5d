"""Fixtures: an in-process EWS emulator per test, and configurations over it."""

from __future__ import annotations

from typing import Any, Iterator, List, Optional, Protocol, Sequence

import pytest

import exchange_sync as es
from exchange_sync.testing import Emulator

HUB = "Company Contacts"
TARGET = "contacts/Company Contacts"
ALICE, BOB, CAROL, DAVE = (f"{u}@contoso.test" for u in ("alice", "bob", "carol", "dave"))


class EmulatorLike(Protocol):
    """An in-process or subprocess emulator."""

    def connection(self, id: str = "exchange") -> es.Connection: ...


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator with 25 contacts in the public folder."""
    with Emulator(contacts=25) as emu:
        yield emu


def make_config(
    emu: EmulatorLike,
    members: Sequence[es.Member],
    *,
    state: str = "memory",
    **group: Any,
) -> es.Config:
    """One group on the public folder `Company Contacts`, delivering into `contacts/Company Contacts`."""
    return es.Config(
        connections=[emu.connection("exchange")],
        groups=[es.Group("contacts", "exchange", public_folder=HUB, target=TARGET, members=members, **group)],
        service=es.ServiceSettings(
            state=state,
            debounce_ms=20,
            poll_interval_secs=1,
            retry_max_attempts=2,
            retry_initial_delay_ms=50,
            shutdown_grace_secs=5,
        ),
    )


def editors_and_readers() -> List[es.Member]:
    """The quickstart's members: two editors, two readers."""
    return [
        es.Member(ALICE, "two_way"),
        es.Member(BOB, "two_way"),
        es.Member(CAROL, "one_way"),
        es.Member(DAVE, "one_way"),
    ]


def name_of(item: es.Item) -> str:
    """A contact's name: its display name, or given name and surname (display names are derived
    by the server and not part of the synced content)."""
    display = item.get("display_name")
    if display is not None:
        return str(display)
    return " ".join(str(item.get(f)) for f in ("given_name", "surname") if item.get(f) is not None)


def by_name(folder: es.Folder, name: str) -> Optional[es.FolderItem]:
    """The item of `folder` whose name is `name`."""
    for fi in folder.items():
        if name_of(fi.item) == name:
            return fi
    return None


def names(folder: es.Folder) -> List[str]:
    """The names in `folder`, sorted."""
    return sorted(name_of(fi.item) for fi in folder.items())


def unique_names(folder: es.Folder) -> List[str]:
    """The display names that occur once in `folder` (generated contacts may share a name), sorted."""
    all_names = names(folder)
    return [n for n in all_names if all_names.count(n) == 1]
