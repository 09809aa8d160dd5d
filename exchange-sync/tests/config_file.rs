//! The configuration file format: the documented example parses, and every kind of mistake is
//! reported with its line, column and configuration path.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::path::Path;

use exchange_sync::config::{
    Auth, Config, ConfigError, Endpoint, HubFolder, LeavePolicy, LogRotation, Severity, StateLocation, TargetFolder,
    WellKnownFolder,
};
use exchange_sync::{Condition, Modification};
use exchange_sync_core::{ConflictPolicy, Direction, LocalChangePolicy, OneWayPolicy};

const PASSWORD_ENV: &str = "EXCHANGE_SYNC_PASSWORD";

fn example_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/config.toml")
}

fn with_password() {
    // set_var is unsafe because other threads may read the environment at the same time; every
    // test of this file writes the same value, so concurrent readers always see a valid string.
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(PASSWORD_ENV, "exchange-sync");
    }
}

fn parse_err(text: &str) -> ConfigError {
    with_password();
    match Config::from_toml_str(text, Some(Path::new("test.toml"))) {
        Ok(_) => panic!("the configuration must be rejected:\n{text}"),
        Err(e) => e,
    }
}

const MINIMAL: &str = r#"
[connections.lab]
url = "https://mail.contoso.test/EWS/Exchange.asmx"
auth = "basic"
username = "sync-admin@contoso.test"
password_env = "EXCHANGE_SYNC_PASSWORD"

[[groups]]
id = "contacts"
connection = "lab"
hub = { public_folder = "Company Contacts" }

[[groups.members]]
mailbox = "alice@contoso.test"
direction = "two_way"
"#;

#[test]
fn the_documented_example_parses_into_the_expected_model() {
    with_password();
    let loaded = Config::load(example_path()).unwrap();
    let config = loaded.config;
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(config.service.state, StateLocation::Sqlite("exchange-sync.sqlite".into()));
    assert_eq!(config.service.debounce.as_millis(), 200);
    assert_eq!(config.service.pull_interval.as_millis(), 2000);
    assert_eq!(config.service.log.level.as_deref(), Some("info"));
    assert_eq!(config.service.log.file, Some("/var/log/exchange-sync/exchange-sync.log".into()));
    assert_eq!((config.service.log.rotation, config.service.log.keep), (LogRotation::Daily, 14));
    let http = config.service.http.as_ref().unwrap();
    assert_eq!(http.listen, std::net::SocketAddr::from(([127, 0, 0, 1], 9464)));
    assert!(http.admin_token.is_none(), "read-only without a token");
    let conn = config.connection("onprem").unwrap();
    assert_eq!(conn.endpoint, Endpoint::Url("https://mail.contoso.test/EWS/Exchange.asmx".into()));
    assert!(matches!(&conn.auth, Auth::Basic { username, .. } if username == "sync-admin@contoso.test"));
    let group = config.group("company-contacts").unwrap();
    assert_eq!(group.hub, HubFolder::PublicFolder("Company Contacts".into()));
    assert_eq!(
        group.default_target,
        TargetFolder::Named { parent: WellKnownFolder::Contacts, name: "Company Contacts".into() }
    );
    assert_eq!(group.conflict_policy, ConflictPolicy::HubWins);
    assert_eq!(group.match_key, vec!["email1.address".to_string()]);
    assert!(!group.take_over_matches);
    assert_eq!(group.on_leave, LeavePolicy::Remove);
    let ids: Vec<&str> = group.members.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["alice@contoso.test", "bob@contoso.test", "carol@contoso.test", "dave@contoso.test"]);
    assert!(group.members[0].direction.is_two_way());
    let carol = &group.members[2];
    assert_eq!(carol.direction, Direction::one_way());
    assert_eq!(
        carol.filter,
        Some(Condition::All(vec![
            Condition::Kind(exchange_sync_core::ItemKind::Contact),
            Condition::not(Condition::category("Internal")),
        ]))
    );
    assert_eq!(
        carol.modifications,
        vec![Modification::clear("phone.home"), Modification::ClearBody, Modification::AddCategory("Company".into())]
    );
    assert_eq!(
        group.members[3].direction,
        Direction::OneWay(OneWayPolicy { on_edit: LocalChangePolicy::Ignore, on_delete: LocalChangePolicy::Revert })
    );
    assert_eq!(group.member_sources.len(), 1);
    assert_eq!(group.member_sources[0].distribution_group, "sales@contoso.test");
    assert_eq!(group.member_sources[0].refresh_interval.as_secs(), 300);
    let holidays = config.group("holidays").unwrap();
    assert_eq!(holidays.default_target, TargetFolder::WellKnown(WellKnownFolder::Calendar));
    assert_eq!(holidays.members[0].modifications, vec![Modification::MeetingsToAppointments]);
}

#[test]
fn unknown_keys_are_reported_with_line_and_column() {
    let text = MINIMAL.replace("direction = \"two_way\"", "direction = \"two_way\"\ncolour = \"blue\"");
    let err = parse_err(&text);
    let d = &err.diagnostics[0];
    let loc = d.location.as_ref().unwrap();
    assert_eq!(loc.line, 16, "{err}");
    assert!(d.message.contains("unknown field `colour`"), "{err}");
    assert!(err.to_string().starts_with("test.toml:16:"), "{err}");
}

#[test]
fn bad_enum_values_list_the_valid_ones() {
    let err = parse_err(&MINIMAL.replace("\"two_way\"", "\"both_ways\""));
    let text = err.to_string();
    assert!(text.contains("both_ways") && text.contains("one_way") && text.contains("two_way"), "{text}");
    assert_eq!(err.diagnostics[0].location.as_ref().unwrap().line, 15, "{text}");
}

#[test]
fn duplicate_member_ids_point_at_the_second_member() {
    let text = format!("{MINIMAL}\n[[groups.members]]\nmailbox = \"alice@contoso.test\"\ndirection = \"one_way\"\n");
    let err = parse_err(&text);
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "groups[0].members[1].id");
    assert!(d.message.contains("appears twice"), "{err}");
    assert_eq!(d.location.as_ref().unwrap().line, 18, "{err}");
}

#[test]
fn filters_on_two_way_members_are_rejected_where_they_are_written() {
    let text =
        MINIMAL.replace("direction = \"two_way\"", "direction = \"two_way\"\nfilter = { category = \"Public\" }");
    let err = parse_err(&text);
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "groups[0].members[0].filter");
    assert!(d.message.contains("one-way members only"), "{err}");
    let loc = d.location.as_ref().unwrap();
    assert_eq!((loc.line, loc.column), (16, 10), "{err}");
}

#[test]
fn missing_secrets_are_errors_and_inline_secrets_warnings() {
    let text = MINIMAL.replace("EXCHANGE_SYNC_PASSWORD", "EXCHANGE_SYNC_TEST_UNSET_PASSWORD_VAR");
    let err = parse_err(&text);
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "connections[0].password");
    assert!(d.message.contains("EXCHANGE_SYNC_TEST_UNSET_PASSWORD_VAR is not set"), "{err}");
    assert_eq!(d.location.as_ref().unwrap().line, 6, "{err}");

    let inline = MINIMAL.replace("password_env = \"EXCHANGE_SYNC_PASSWORD\"", "password = \"hunter2\"");
    let loaded = Config::from_toml_str(&inline, None).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].severity, Severity::Warning);
    assert!(!loaded.warnings[0].to_string().contains("hunter2"));
}

#[test]
fn every_error_is_reported_not_only_the_first() {
    let text = MINIMAL
        .replace("connection = \"lab\"", "connection = \"nowhere\"")
        .replace("mailbox = \"alice@contoso.test\"", "mailbox = \"alice\"");
    let err = parse_err(&text);
    let paths: Vec<&str> = err.errors().map(|d| d.path.as_str()).collect();
    assert_eq!(paths, ["groups[0].connection", "groups[0].members[0].mailbox"], "{err}");
}

#[test]
fn malformed_conditions_and_modifications_are_explained() {
    let text = MINIMAL.replace(
        "direction = \"two_way\"",
        "direction = \"one_way\"\nfilter = { field = \"company\" }\nmodify = [{ set = \"company\" }]",
    );
    let err = parse_err(&text);
    let messages: Vec<String> = err.errors().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 2, "{err}");
    assert!(messages[0].contains("test.toml:16:") && messages[0].contains("exactly one of equals"), "{err}");
    assert!(messages[1].contains("test.toml:17:") && messages[1].contains("needs value"), "{err}");
}

#[test]
fn syntax_errors_have_positions() {
    let err = parse_err("[service\nstate = 1");
    let loc = err.diagnostics[0].location.as_ref().unwrap();
    assert_eq!(loc.line, 1, "{err}");
}

#[test]
fn direction_specific_keys_are_checked() {
    let text = MINIMAL.replace("direction = \"two_way\"", "direction = \"two_way\"\non_edit = \"ignore\"");
    let err = parse_err(&text);
    assert!(err.to_string().contains("on_edit applies to one-way members only"), "{err}");
}

#[test]
fn member_priority_needs_known_members() {
    let text = MINIMAL.replace(
        "hub = { public_folder = \"Company Contacts\" }",
        "hub = { public_folder = \"Company Contacts\" }\nconflict_policy = \"member_priority\"\npriority = [\"zed@contoso.test\"]",
    );
    let err = parse_err(&text);
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "groups[0].priority[0]");
    assert_eq!(d.location.as_ref().unwrap().line, 13, "{err}");
}

#[test]
fn take_over_matches_is_read_and_needs_a_match_key() {
    with_password();
    let text = MINIMAL.replace(
        "hub = { public_folder = \"Company Contacts\" }",
        "hub = { public_folder = \"Company Contacts\" }\nmatch_key = [\"email1.address\"]\ntake_over_matches = true",
    );
    let config = Config::from_toml_str(&text, None).unwrap().config;
    assert!(config.groups[0].take_over_matches);
    assert!(config.groups[0].sync_group(&[]).take_over_matches, "passed to the engine");

    let text = MINIMAL.replace(
        "hub = { public_folder = \"Company Contacts\" }",
        "hub = { public_folder = \"Company Contacts\" }\ntake_over_matches = true",
    );
    let err = parse_err(&text);
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "groups[0].take_over_matches");
    assert_eq!(d.location.as_ref().unwrap().line, 12, "{err}");
    assert!(d.message.contains("needs") || d.message.contains("give match_key"), "{err}");
}

#[test]
fn member_ids_that_are_addresses_are_in_lower_case() {
    with_password();
    let text = MINIMAL.replace("mailbox = \"alice@contoso.test\"", "mailbox = \"Alice@Contoso.TEST\"");
    let config = Config::from_toml_str(&text, None).unwrap().config;
    let alice = &config.groups[0].members[0];
    assert_eq!(alice.id, "alice@contoso.test", "the id state is keyed by");
    assert_eq!(alice.mailbox, "Alice@Contoso.TEST", "the address as written");
    let text = format!(
        "{MINIMAL}\n[[groups.members]]\nid = \"Bob@Contoso.test\"\nmailbox = \"bob@contoso.test\"\ndirection = \"one_way\"\n"
    );
    let config = Config::from_toml_str(&text, None).unwrap().config;
    assert_eq!(config.groups[0].members[1].id, "bob@contoso.test", "explicit ids that are addresses too");
}

#[test]
fn one_mailbox_in_two_spellings_is_refused_with_both_positions() {
    let text = format!("{MINIMAL}\n[[groups.members]]\nmailbox = \"ALICE@contoso.test\"\ndirection = \"one_way\"\n");
    let err = parse_err(&text);
    let errors: Vec<_> = err.errors().collect();
    assert_eq!(errors.len(), 1, "one finding for one mistake: {err}");
    let d = errors[0];
    assert_eq!(d.path, "groups[0].members[1].id");
    assert_eq!(d.location.as_ref().unwrap().line, 18, "{err}");
    let related = d.related.as_ref().unwrap();
    assert_eq!(related.path, "groups[0].members[0].id");
    assert_eq!(related.location.as_ref().unwrap().line, 14, "{err}");
    assert!(d.message.contains("without regard to case"), "{err}");
    assert!(err.to_string().contains("(see groups[0].members[0].id at line 14, column"), "{err}");

    // Different ids do not make one folder two: the same mailbox and target is refused too.
    let text = format!(
        "{MINIMAL}\n[[groups.members]]\nid = \"alice-2\"\nmailbox = \"ALICE@contoso.test\"\ndirection = \"one_way\"\n"
    );
    let err = parse_err(&text);
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "groups[0].members[1].mailbox");
    assert!(d.message.contains("differ only by case"), "{err}");
    // Another folder of the same mailbox is fine.
    let text = format!(
        "{MINIMAL}\n[[groups.members]]\nid = \"alice-calendar\"\nmailbox = \"alice@contoso.test\"\ndirection = \"one_way\"\ntarget = \"calendar\"\n"
    );
    with_password();
    Config::from_toml_str(&text, None).unwrap();
}

#[test]
fn negotiate_takes_a_principal_and_an_optional_password_and_channel_binding_can_be_turned_off() {
    use exchange_sync::config::Auth;
    with_password();
    let kerberos = MINIMAL
        .replace("auth = \"basic\"", "auth = \"negotiate\"")
        .replace("sync-admin@contoso.test", "sync-admin@CONTOSO.TEST")
        .replace("password_env = \"EXCHANGE_SYNC_PASSWORD\"\n", "");
    let config = Config::from_toml_str(&kerberos, None).unwrap().config;
    assert_eq!(
        config.connections[0].auth,
        Auth::Negotiate { username: "sync-admin@CONTOSO.TEST".into(), password: None }
    );
    assert!(config.connections[0].tls.channel_binding, "on by default");
    // "kerberos" is the same scheme; a password is the NTLM fallback.
    let fallback = MINIMAL.replace("auth = \"basic\"", "auth = \"kerberos\"");
    let config = Config::from_toml_str(&fallback, None).unwrap().config;
    assert!(matches!(&config.connections[0].auth, Auth::Negotiate { password: Some(_), .. }));
    let unbound = MINIMAL.replace("auth = \"basic\"", "auth = \"ntlm\"\ntls = { channel_binding = false }");
    let loaded = Config::from_toml_str(&unbound, None).unwrap();
    assert!(!loaded.config.connections[0].tls.channel_binding);
}

#[test]
fn a_postgres_state_names_its_worker_and_lease_and_never_shows_a_password() {
    use exchange_sync::config::{Secret, StateLocation};
    with_password();
    let text = format!(
        "[service]\nstate = \"postgres://exsync:inline-secret@db.contoso.test:5432/sync\"\n\
         state_password_env = \"STATE_PASSWORD\"\nworker = \"sync-2\"\nlease_secs = 12\n{MINIMAL}"
    );
    let loaded = Config::from_toml_str(&text, Some(Path::new("test.toml"))).unwrap();
    let StateLocation::Postgres(pg) = &loaded.config.service.state else {
        panic!("a postgres:// state is PostgreSQL: {:?}", loaded.config.service.state)
    };
    assert_eq!(pg.worker, "sync-2");
    assert_eq!(pg.lease, std::time::Duration::from_secs(12));
    assert_eq!(pg.schema, "exchange_sync");
    assert_eq!(pg.password, Some(Secret::Env("STATE_PASSWORD".into())));
    assert_eq!(pg.shown_url(), "postgres://exsync:***@db.contoso.test:5432/sync");
    assert!(!format!("{:?}", loaded.config).contains("inline-secret"));
}
