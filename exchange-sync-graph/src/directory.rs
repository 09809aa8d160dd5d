//! Group membership from the directory: the mailboxes of a distribution group, a mail-enabled
//! security group or a Microsoft 365 group, nested groups included, for sync groups whose
//! members come from such a group (`member_sources` in the service's configuration).
//!
//! The group is found by its address (`GET /groups?$filter=mail eq '...'`), its members listed
//! with `GET /groups/{id}/transitiveMembers` (Graph flattens nested groups itself). Only users
//! with a mailbox address become members; nested groups, mail contacts and users without `mail`
//! are left out. The application needs `GroupMember.Read.All` (to list the members) and
//! `User.Read.All` (without it Graph answers users with their id alone, no address).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::client::{GraphClient, literal, query_value, segment};
use crate::error::{ErrorContext, GraphError, Result};

/// Pages of members read at most (999 members each): a bound against a link that never ends.
const MAX_PAGES: usize = 1_000;

/// The mailbox addresses of the group with this address, each once (compared without regard to
/// case, as Exchange compares addresses), in the spelling the directory gives.
pub async fn group_mailboxes(client: &GraphClient, address: &str) -> Result<Vec<String>> {
    const FIND: &str = "find group";
    const LIST: &str = "list group members";
    let filter = query_value(&format!("mail eq {}", literal(address)));
    let found =
        client.get_json(address, FIND, &format!("/groups?$filter={filter}&$select=id,mail,displayName")).await?;
    let id = found
        .get("value")
        .and_then(Value::as_array)
        .and_then(|groups| groups.iter().find_map(|g| g.get("id").and_then(Value::as_str)))
        .ok_or_else(|| GraphError::Http {
            status: 404,
            code: "GroupNotFound".into(),
            message: format!("no group in the directory has the address {address}"),
            retry_after: None,
            context: Box::new(ErrorContext::new(FIND, address)),
        })?
        .to_owned();
    let mut members = BTreeMap::new();
    let mut url = format!("/groups/{}/transitiveMembers?$select=id,mail,userPrincipalName&$top=999", segment(&id));
    for _ in 0..MAX_PAGES {
        let page = client.get_json(address, LIST, &url).await?;
        for member in page.get("value").and_then(Value::as_array).into_iter().flatten() {
            let is_user = member.get("@odata.type").and_then(Value::as_str) == Some("#microsoft.graph.user");
            if let Some(mail) = member.get("mail").and_then(Value::as_str).filter(|_| is_user) {
                members.entry(mail.to_lowercase()).or_insert_with(|| mail.to_owned());
            }
        }
        match page.get("@odata.nextLink").and_then(Value::as_str) {
            Some(next) if next != url => url = next.to_owned(),
            Some(_) => {
                return Err(GraphError::protocol("a nextLink that does not advance", ErrorContext::new(LIST, address)));
            }
            None => return Ok(members.into_values().collect()),
        }
    }
    Err(GraphError::protocol(format!("more than {MAX_PAGES} pages of members"), ErrorContext::new(LIST, address)))
}
