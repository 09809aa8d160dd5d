"""Exceptions: the hierarchy, and the context they carry for bad configuration, unreachable
servers, wrong credentials, missing folders and items."""

from __future__ import annotations

import concurrent.futures

import pytest

import exchange_sync as es
from exchange_sync.testing import Emulator

from conftest import ALICE, HUB, TARGET, make_config


def unreachable_config(**service: object) -> es.Config:
    # Port 9 (discard) on loopback: nothing listens there, connections are refused at once.
    return es.Config(
        connections=[
            es.Connection("exchange", "http://127.0.0.1:9/EWS/Exchange.asmx", username="a@contoso.test", password="x")
        ],
        groups=[es.Group("contacts", "exchange", public_folder=HUB, members=[es.Member(ALICE)])],
        service=es.ServiceSettings(state="memory", retry_max_attempts=1),
    )


def test_every_exception_is_an_exchange_sync_error() -> None:
    for cls in (
        es.ConfigError,
        es.AuthError,
        es.ThrottledError,
        es.ConflictError,
        es.MassDeleteError,
        es.NotFoundError,
        es.TransientError,
        es.UnreachableError,
        es.PermanentError,
        es.StateError,
    ):
        assert issubclass(cls, es.ExchangeSyncError)
        assert cls.__doc__
    assert issubclass(es.ExchangeSyncError, Exception)


def test_an_unreachable_server_raises_unreachable_error_at_once_and_fails_a_run() -> None:
    # A refused connection will not pass by retrying: it fails fast, as its own class.
    service = es.SyncService(unreachable_config())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        items = pool.submit(lambda: service.folders.mailbox_folder(ALICE, "contacts").items())
        report = service.run_once()
        with pytest.raises(es.UnreachableError) as caught:
            items.result()
    err = caught.value
    assert err.kind == "unreachable" and err.retryable is False
    assert err.mailbox == ALICE
    assert err.folder is not None and err.folder.startswith(ALICE)

    group = report.groups[0]
    assert group.outcome == "failed" and not report.is_clean()
    [error] = group.errors
    assert error.kind == "unreachable" and not error.retryable
    assert isinstance(error.to_exception(), es.UnreachableError)
    with pytest.raises(es.UnreachableError) as raised:
        report.raise_for_errors()
    assert raised.value.group == "contacts"
    status = service.status()[0]
    assert status.last_report is not None and status.last_report.outcome == "failed"


def test_wrong_credentials_raise_auth_error(emulator: Emulator) -> None:
    config = es.Config(
        connections=[es.Connection("exchange", emulator.url, username=emulator.admin, password="wrong")],
        service=es.ServiceSettings(state="memory"),
    )
    folders = es.EwsFolders(config)
    with pytest.raises(es.AuthError) as caught:
        folders.public_folder(HUB)
    assert caught.value.kind == "auth" and caught.value.retryable is False


def test_missing_folders_and_items_raise_not_found_with_context(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    with pytest.raises(es.NotFoundError) as caught:
        service.folders.public_folder("Company Contacts/Nope")
    assert "Nope" in str(caught.value) and caught.value.operation == "open hub"
    with pytest.raises(es.NotFoundError) as missing_folder:
        service.folders.mailbox_folder(ALICE, "contacts/Not There")
    assert missing_folder.value.mailbox == ALICE

    alice = service.folders.mailbox_folder(ALICE, TARGET, create=True)
    item_id = alice.create(es.Item("contact", {"given_name": "Short", "surname": "Lived"}))
    alice.delete(item_id)
    with pytest.raises(es.NotFoundError) as gone:
        alice.get(item_id)
    assert gone.value.folder is not None and ALICE in gone.value.folder


def test_unknown_groups_are_configuration_errors(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    with pytest.raises(es.ConfigError):
        service.run_once(groups=["no-such-group"])
    with pytest.raises(es.ConfigError):
        service.conflicts("no-such-group")


def test_an_invalid_configuration_never_reaches_the_server() -> None:
    with pytest.raises(es.ConfigError) as caught:
        es.Config.from_toml("[[groups]]\nid = 1\n")
    assert caught.value.diagnostics[0].line == 2


def test_a_callback_exception_is_raised_after_the_run(emulator: Emulator) -> None:
    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))

    def explode(event: es.ProgressEvent) -> None:
        raise ValueError(f"callback saw {event.kind}")

    with pytest.raises(ValueError, match="callback saw pass_started"):
        service.run_once(on_event=explode)
    # The run itself completed: the copies are there.
    assert len(service.folders.mailbox_folder(ALICE, TARGET).items()) == 25


def test_blocking_calls_from_inside_an_async_callback_are_refused(emulator: Emulator) -> None:
    import asyncio

    service = es.SyncService(make_config(emulator, [es.Member(ALICE, "two_way")]))
    errors: list[BaseException] = []

    def blocking_in_callback(event: es.ProgressEvent) -> None:
        try:
            service.status()
        except RuntimeError as e:
            errors.append(e)

    async def main() -> None:
        await service.run_once_async(on_event=blocking_in_callback)

    asyncio.run(main())
    assert errors and "use the *_async method" in str(errors[0])
