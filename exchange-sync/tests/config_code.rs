//! The configuration built from code gets the same checks as a file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use exchange_sync::config::{Auth, Config, Connection, GroupConfig, HubFolder, MemberConfig, Secret};
use exchange_sync::{Condition, Modification};

fn config() -> Config {
    Config {
        connections: vec![Connection::new(
            "lab",
            "http://127.0.0.1:8080/EWS/Exchange.asmx",
            Auth::Basic { username: "sync-admin@contoso.test".into(), password: Secret::Inline("x".into()) },
        )],
        groups: vec![
            GroupConfig::new("contacts", "lab", HubFolder::PublicFolder("Company Contacts".into()))
                .with_member(MemberConfig::two_way("alice@contoso.test"))
                .with_member(
                    MemberConfig::one_way("carol@contoso.test")
                        .with_filter(Condition::category("Public"))
                        .with_modification(Modification::ClearBody),
                ),
        ],
        ..Config::default()
    }
}

#[test]
fn a_group_built_in_code_validates_with_warnings() {
    let warnings = config().validate().unwrap();
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["connections[0].url", "connections[0].password"]);
}

#[test]
fn code_configurations_get_paths_but_no_positions() {
    let mut c = config();
    c.groups[0].members[0].filter = Some(Condition::category("x"));
    let err = c.validate().unwrap_err();
    let d = err.errors().next().unwrap();
    assert_eq!(d.path, "groups[0].members[0].filter");
    assert!(d.location.is_none());
}

#[test]
fn the_core_group_has_the_hub_and_every_member() {
    let c = config();
    let group = c.groups[0].sync_group(&[]);
    group.validate().unwrap();
    assert_eq!(
        group.folders().map(|m| m.as_str()).collect::<Vec<_>>(),
        ["hub", "alice@contoso.test", "carol@contoso.test"]
    );
}
