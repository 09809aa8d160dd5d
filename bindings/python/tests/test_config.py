"""Configuration: built in code, read from TOML, and every mistake reported as ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest

import exchange_sync as es

GOOD_TOML = """
[service]
state = "memory"
debounce_ms = 100

[connections.exchange]
url = "https://mail.contoso.test/EWS/Exchange.asmx"
auth = "basic"
username = "sync-admin@contoso.test"
password_env = "EXCHANGE_SYNC_TEST_PASSWORD"

[[groups]]
id = "contacts"
connection = "exchange"
hub = { public_folder = "Company Contacts" }
target = "contacts/Company Contacts"
match_key = ["email1.address"]

[[groups.members]]
mailbox = "alice@contoso.test"
direction = "two_way"

[[groups.members]]
mailbox = "carol@contoso.test"
direction = "one_way"
filter = { category = "Customers" }
modify = [{ clear = "phone.mobile" }]
"""


def test_a_file_and_code_describe_the_same_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_SYNC_TEST_PASSWORD", "from-the-environment")
    path = tmp_path / "exchange-sync.toml"
    path.write_text(GOOD_TOML)
    loaded = es.Config.load(path)
    assert loaded.service.state == "memory"
    assert loaded.service.debounce_ms == 100
    assert [c.id for c in loaded.connections] == ["exchange"]
    group = loaded.groups[0]
    assert (group.id, group.connection, group.hub, group.target) == (
        "contacts",
        "exchange",
        "public folder Company Contacts",
        "contacts/Company Contacts",
    )
    assert [(m.mailbox, m.direction) for m in group.members] == [
        ("alice@contoso.test", "two_way"),
        ("carol@contoso.test", "one_way"),
    ]
    assert loaded.warnings == []

    built = es.Config(
        connections=[
            es.Connection(
                "exchange",
                "https://mail.contoso.test/EWS/Exchange.asmx",
                username="sync-admin@contoso.test",
                password_env="EXCHANGE_SYNC_TEST_PASSWORD",
            )
        ],
        groups=[
            es.Group(
                "contacts",
                "exchange",
                public_folder="Company Contacts",
                target="contacts/Company Contacts",
                match_key=["email1.address"],
                members=[
                    es.Member("alice@contoso.test", "two_way"),
                    es.Member(
                        "carol@contoso.test",
                        "one_way",
                        filter=es.Filter.category("Customers"),
                        modifications=[es.Modification.clear_field("phone.mobile")],
                    ),
                ],
            )
        ],
        service=es.ServiceSettings(state="memory", debounce_ms=100),
    )
    assert repr(built.groups[0]) == repr(group)
    assert [m.id for m in built.groups[0].members] == [m.id for m in group.members]


def test_inline_secrets_are_accepted_with_a_warning_and_never_shown() -> None:
    conn = es.Connection("x", "https://mail.contoso.test/EWS/Exchange.asmx", username="u", password="hunter2")
    config = es.Config(connections=[conn])
    assert any("secret is written into the configuration" in str(w) for w in config.warnings)
    assert all(w.severity == "warning" for w in config.warnings)
    assert "hunter2" not in repr(conn)
    assert "hunter2" not in repr(config.connections[0])


def test_file_errors_name_file_line_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXCHANGE_SYNC_TEST_PASSWORD", "from-the-environment")
    path = tmp_path / "bad.toml"
    path.write_text(GOOD_TOML.replace('direction = "one_way"', 'direction = "sideways"'))
    with pytest.raises(es.ConfigError) as caught:
        es.Config.load(path)
    err = caught.value
    assert err.kind == "config" and err.retryable is False
    assert isinstance(err, es.ExchangeSyncError)
    [diagnostic] = err.diagnostics
    assert diagnostic.file == str(path)
    line_of_mistake = GOOD_TOML.splitlines().index('direction = "one_way"') + 1
    assert diagnostic.line == line_of_mistake
    assert diagnostic.column is not None and diagnostic.column > 1
    assert "sideways" in str(diagnostic) or "sideways" in err.message


def test_every_semantic_mistake_is_reported_at_once() -> None:
    text = GOOD_TOML.replace('connection = "exchange"', 'connection = "nowhere"').replace(
        '"alice@contoso.test"\ndirection = "two_way"', '"carol@contoso.test"\ndirection = "two_way"'
    )
    with pytest.raises(es.ConfigError) as caught:
        es.Config.from_toml(text, "inline.toml")
    paths = [d.path for d in caught.value.diagnostics if d.severity == "error"]
    assert any(p.startswith("groups[0].connection") for p in paths), paths
    assert any("members" in p for p in paths), paths
    assert all(d.line is not None for d in caught.value.diagnostics)


def test_a_configuration_built_in_code_is_validated_too() -> None:
    with pytest.raises(es.ConfigError) as caught:
        es.Config(
            connections=[es.Connection("exchange", "https://x.test/EWS/Exchange.asmx", auth="none")],
            groups=[es.Group("g", "missing-connection", public_folder="P", members=[es.Member("a@x.test")])],
        )
    assert any("missing-connection" in d.message or "connection" in d.path for d in caught.value.diagnostics)


@pytest.mark.parametrize(
    "build",
    [
        lambda: es.Member("a@x.test", "sideways"),  # type: ignore[arg-type]
        lambda: es.Member("a@x.test", "two_way", on_edit="ignore"),
        lambda: es.Member("a@x.test", "one_way", adopt_new_items=False),
        lambda: es.Member("a@x.test", target="inbox/Stuff"),
        lambda: es.Connection("c", "https://x.test", auth="digest"),  # type: ignore[arg-type]
        lambda: es.Connection("c"),
        lambda: es.Connection("c", "https://x.test", password="a", password_env="B"),
        lambda: es.Group("g", "c"),
        lambda: es.Group("g", "c", public_folder="P", conflict_policy="member_priority"),
        lambda: es.Group("g", "c", public_folder="P", on_leave="shred"),  # type: ignore[arg-type]
        lambda: es.Filter.kind("spaceship"),
        lambda: es.ServiceSettings(poll_interval_secs=-1),
        # A PostgreSQL state is configured in a file (worker, lease, password source), never taken
        # for an SQLite file named like a URL.
        lambda: es.ServiceSettings(state="postgres://sync@db.contoso.test/exchange_sync"),
    ],
)
def test_bad_keyword_values_raise_config_error(build: object) -> None:
    assert callable(build)
    with pytest.raises(es.ConfigError) as caught:
        build()
    assert caught.value.diagnostics and caught.value.diagnostics[0].message


def test_filters_combine_with_operators() -> None:
    f = es.Filter.category("VIP") & ~es.Filter.field_exists("company") | es.Filter.kind("contact")
    assert "Any" in repr(f) and "Not" in repr(f) and "All" in repr(f)
    member = es.Member("c@x.test", "one_way", filter=f, modifications=[es.Modification.clear_body()])
    assert member.direction == "one_way"


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (lambda: es.Member("a@x.test", "sideways"), "member a@x.test.direction"),  # type: ignore[arg-type]
        (lambda: es.Member("a@x.test", "two_way", on_edit="ignore"), "member a@x.test.on_edit"),
        (lambda: es.Member("a@x.test", target="inbox/Stuff"), "member a@x.test.target"),
        (lambda: es.Connection("c", "https://x.test", auth="digest"), "connection c.auth"),  # type: ignore[arg-type]
        (lambda: es.ServiceSettings(poll_interval_secs=-1), "service.poll_interval_secs"),
        (lambda: es.ServiceSettings(shutdown_grace_secs=0.5), "service.shutdown_grace_secs"),
        (lambda: es.Group("g", "c", public_folder="P", on_leave="shred"), "group g.on_leave"),  # type: ignore[arg-type]
    ],
)
def test_keyword_findings_name_the_keyword(build: object, path: str) -> None:
    """Keyword arguments are read by the TOML format itself; a finding names the keyword."""
    assert callable(build)
    with pytest.raises(es.ConfigError) as caught:
        build()
    assert [d.path for d in caught.value.diagnostics] == [path], caught.value.diagnostics


def test_keywords_take_what_the_file_takes() -> None:
    """A key the file format knows needs no binding code: `negotiate` came with the format."""
    connection = es.Connection("c", "https://x.test", auth="negotiate", username="sync@contoso.test")
    assert connection.auth == "negotiate"
