//! The tenant's directory as far as group membership goes: distribution groups, mail-enabled
//! security groups and Microsoft 365 groups, with users and other groups as members.
//!
//! `GET /groups?$filter=mail eq '...'` finds a group by its address and
//! `GET /groups/{id}/transitiveMembers` lists its members with nested groups flattened, as Graph
//! does: every user, every nested group and every contact reached, each once, as
//! `microsoft.graph.directoryObject`s told apart by `@odata.type`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::error::GraphError;
use crate::store::Store;

/// A mail-enabled group.
#[derive(Debug, Clone)]
pub struct DirectoryGroup {
    /// Object id (a GUID).
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Primary SMTP address.
    pub mail: String,
    /// A Microsoft 365 group (`groupTypes: ["Unified"]`) rather than a distribution group.
    pub unified: bool,
    /// Members' addresses: mailboxes' UPNs, other groups' addresses, or external addresses (mail
    /// contacts).
    pub members: Vec<String>,
}

/// The groups of the tenant, by object id.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    groups: BTreeMap<String, DirectoryGroup>,
}

impl Directory {
    /// Adds a group (or replaces the group with this address); answers its object id.
    pub fn add_group(&mut self, mail: &str, display_name: &str, unified: bool, members: &[&str]) -> String {
        let existing = self.by_mail(mail).map(|g| g.id.clone());
        let id = existing.unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string());
        let group = DirectoryGroup {
            id: id.clone(),
            display_name: display_name.to_owned(),
            mail: mail.to_owned(),
            unified,
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        self.groups.insert(id.clone(), group);
        id
    }

    fn by_mail(&self, mail: &str) -> Option<&DirectoryGroup> {
        self.groups.values().find(|g| g.mail.eq_ignore_ascii_case(mail))
    }

    fn render(g: &DirectoryGroup) -> Value {
        json!({
            "@odata.type": "#microsoft.graph.group",
            "id": g.id,
            "displayName": g.display_name,
            "mail": g.mail,
            "mailEnabled": true,
            "securityEnabled": !g.unified,
            "groupTypes": if g.unified { vec!["Unified"] } else { Vec::new() },
        })
    }

    /// `GET /groups`, optionally `$filter=mail eq '...'`.
    pub fn list(&self, mail: Option<&str>) -> Vec<Value> {
        self.groups.values().filter(|g| mail.is_none_or(|m| g.mail.eq_ignore_ascii_case(m))).map(Self::render).collect()
    }

    /// `GET /groups/{id}/transitiveMembers`: users, nested groups and contacts, each once.
    pub fn transitive_members(&self, id: &str, store: &Store) -> Result<Vec<Value>, GraphError> {
        let group = self.groups.get(id).ok_or_else(|| {
            GraphError::not_found(
                "Request_ResourceNotFound",
                format!(
                    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
                ),
            )
        })?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::from([group.id.clone()]);
        let mut queue: Vec<String> = group.members.iter().rev().cloned().collect();
        while let Some(address) = queue.pop() {
            if !seen.insert(address.to_ascii_lowercase()) {
                continue;
            }
            if let Some(nested) = self.by_mail(&address) {
                if seen.insert(nested.id.clone()) {
                    out.push(Self::render(nested));
                    queue.extend(nested.members.iter().rev().cloned());
                }
            } else if let Ok(user) = store.user(&address) {
                let mut user = user;
                if let Some(o) = user.as_object_mut() {
                    o.insert("@odata.type".into(), json!("#microsoft.graph.user"));
                }
                out.push(user);
            } else {
                out.push(json!({
                    "@odata.type": "#microsoft.graph.orgContact",
                    "id": uuid::Uuid::new_v4().hyphenated().to_string(),
                    "mail": address,
                    "displayName": address,
                }));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_groups_are_flattened_and_each_member_listed_once() {
        let mut store = Store::default();
        store.add_mailbox("alice@contoso.test", "Alice", false);
        store.add_mailbox("bob@contoso.test", "Bob", false);
        let mut d = Directory::default();
        d.add_group("team@contoso.test", "Team", false, &["bob@contoso.test", "sales@contoso.test"]);
        let sales = d.add_group(
            "sales@contoso.test",
            "Sales",
            true,
            &["Alice@contoso.test", "team@contoso.test", "partner@example.test"],
        );
        let members = d.transitive_members(&sales, &store).unwrap();
        let kinds: Vec<(&str, &str)> =
            members.iter().map(|m| (m["@odata.type"].as_str().unwrap(), m["mail"].as_str().unwrap())).collect();
        assert_eq!(
            kinds,
            [
                ("#microsoft.graph.user", "alice@contoso.test"),
                ("#microsoft.graph.group", "team@contoso.test"),
                ("#microsoft.graph.user", "bob@contoso.test"),
                ("#microsoft.graph.orgContact", "partner@example.test"),
            ]
        );
        assert_eq!(d.list(Some("SALES@contoso.test")).len(), 1);
        assert!(d.transitive_members("nope", &store).is_err());
    }
}
