//! Subscribe, GetEvents, Unsubscribe and GetStreamingEvents.

use std::collections::HashSet;
use std::time::Duration;

use super::{Context, Outcome, Responses, owns, required, resolve_folder, schema_fault};
use crate::notifications::{QueuedEvent, SubscriptionError};
use crate::render::{datetime, folder_id};
use crate::response_code::EwsError;
use crate::soap::Fault;
use crate::store::{EventKind, EventTarget, IdKind, MailboxKind, Permission, Store, encode_change_key, encode_id};
use crate::xml::{Element, escape};

/// Most events one GetEvents answer carries.
const MAX_EVENTS: usize = 50;

/// Event types a subscription may ask for.
const EVENT_TYPES: &[&str] = &[
    "CopiedEvent",
    "CreatedEvent",
    "DeletedEvent",
    "ModifiedEvent",
    "MovedEvent",
    "NewMailEvent",
    "FreeBusyChangedEvent",
];

fn sub_error(e: SubscriptionError) -> EwsError {
    match e {
        SubscriptionError::NotFound => {
            EwsError::new("ErrorSubscriptionNotFound", "The specified subscription was not found.")
        }
        SubscriptionError::InvalidWatermark => EwsError::new(
            "ErrorInvalidWatermark",
            "The watermark used for creating this subscription was not recognized.",
        ),
    }
}

/// Subscribe (pull or streaming; push is not offered).
pub fn subscribe(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let mut r = Responses::new("Subscribe");
    let (req, streaming) = if let Some(p) = op.child("PullSubscriptionRequest") {
        (p, false)
    } else if let Some(s) = op.child("StreamingSubscriptionRequest") {
        if !ctx.shared.config.server_version.supports_streaming() {
            return Err(schema_fault("StreamingSubscriptionRequest is not available in this server version"));
        }
        (s, true)
    } else {
        r.error(
            &EwsError::new("ErrorInvalidSubscriptionRequest", "Only pull and streaming subscriptions are supported."),
            "",
        );
        return Ok(r.finish());
    };
    let res = (|| {
        let types: HashSet<String> = req
            .child("EventTypes")
            .map(|t| {
                t.children
                    .iter()
                    .map(|c| c.text.trim().to_string())
                    .filter(|t| EVENT_TYPES.contains(&t.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        if types.is_empty() {
            return Err(EwsError::invalid_request("No EventTypes given."));
        }
        let all = req.attr("SubscribeToAllFolders") == Some("true");
        let mut folders = HashSet::new();
        let mut mailbox = None;
        if let Some(ids) = req.child("FolderIds") {
            for f in &ids.children {
                let (index, number) = resolve_folder(ctx, f, Permission::Reviewer)?;
                if mailbox.is_some_and(|m| m != index) {
                    return Err(EwsError::invalid_request("All folders of a subscription must be in one mailbox."));
                }
                mailbox = Some(index);
                folders.insert(number);
            }
        }
        let index = match mailbox {
            Some(i) => i,
            None => ctx.shared.store.mailbox_index(&ctx.acting).ok_or_else(|| EwsError::no_mailbox(&ctx.acting))?,
        };
        let (is_public, owned) = ctx
            .shared
            .store
            .read(index, |mb| (mb.kind == MailboxKind::PublicFolders, owns(ctx, mb)))
            .unwrap_or((false, false));
        if is_public && folders.len() != 1 {
            return Err(EwsError::new(
                "ErrorInvalidSubscriptionRequest",
                "A subscription to public folders must name exactly one folder.",
            ));
        }
        if !is_public && !owned {
            return Err(EwsError::new(
                "ErrorSubscriptionDelegateAccessNotSupported",
                "Subscriptions are not supported for delegate user access.",
            ));
        }
        if folders.is_empty() && !all {
            return Err(EwsError::invalid_request("FolderIds or SubscribeToAllFolders is required."));
        }
        let scope = if all && folders.is_empty() { None } else { Some(folders) };
        let (id, watermark) = ctx.shared.store.hub().subscribe(index, scope, types, streaming, &ctx.login, ctx.backend);
        Ok(if streaming {
            format!("<m:SubscriptionId>{}</m:SubscriptionId>", escape(&id))
        } else {
            format!(
                "<m:SubscriptionId>{}</m:SubscriptionId><m:Watermark>{}</m:Watermark>",
                escape(&id),
                escape(&watermark)
            )
        })
    })();
    r.push(res, "");
    Ok(r.finish())
}

/// Unsubscribe.
pub fn unsubscribe(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let id = op.child_text("SubscriptionId").ok_or_else(|| schema_fault("Unsubscribe requires SubscriptionId"))?;
    let mut r = Responses::new("Unsubscribe");
    r.push(ctx.shared.store.hub().unsubscribe(id, &ctx.login).map(|_| String::new()).map_err(sub_error), "");
    Ok(r.finish())
}

/// Writes one event element (`t:CreatedEvent`, ...).
pub fn write_event(out: &mut String, store: &Store, q: &QueuedEvent) {
    let e = &q.event;
    let name = match e.kind {
        EventKind::Created => "CreatedEvent",
        EventKind::Modified => "ModifiedEvent",
        EventKind::Deleted => "DeletedEvent",
        EventKind::Moved => "MovedEvent",
    };
    out.push_str(&format!(
        "<t:{name}><t:Watermark>{}</t:Watermark><t:TimeStamp>{}</t:TimeStamp>",
        escape(&q.watermark),
        datetime(&e.time)
    ));
    let _ = store.read(e.mailbox, |mb| {
        match e.target {
            EventTarget::Item(n) => {
                let id = encode_id(IdKind::Item, mb.index, n);
                out.push_str(&format!(r#"<t:ItemId Id="{id}" ChangeKey="{}"/>"#, encode_change_key(n, e.version)));
            }
            EventTarget::Folder(n) => out.push_str(&folder_id("FolderId", mb, n)),
        }
        out.push_str(&folder_id("ParentFolderId", mb, e.parent));
        if let Some((old, old_parent)) = e.old {
            match old {
                EventTarget::Item(n) => {
                    out.push_str(&format!(r#"<t:OldItemId Id="{}"/>"#, encode_id(IdKind::Item, mb.index, n)))
                }
                EventTarget::Folder(n) => out.push_str(&folder_id("OldFolderId", mb, n)),
            }
            out.push_str(&folder_id("OldParentFolderId", mb, old_parent));
        }
    });
    out.push_str(&format!("</t:{name}>"));
}

/// GetEvents: the queued events since the last call, or a StatusEvent when there are none.
pub fn get_events(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let id = op.child_text("SubscriptionId").ok_or_else(|| schema_fault("GetEvents requires SubscriptionId"))?;
    let watermark = op.child_text("Watermark");
    let mut r = Responses::new("GetEvents");
    let store = &ctx.shared.store;
    let res = store.hub().take(id, &ctx.login, watermark, MAX_EVENTS, false).map_err(sub_error).map(|(previous, events, more, current)| {
        let mut s = format!(
            "<m:Notification><t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>{more}</t:MoreEvents>",
            escape(id),
            escape(&previous)
        );
        if events.is_empty() {
            s.push_str(&format!("<t:StatusEvent><t:Watermark>{}</t:Watermark></t:StatusEvent>", escape(&current)));
        }
        for q in &events {
            write_event(&mut s, store, q);
        }
        s.push_str("</m:Notification>");
        s
    });
    r.push(res, "");
    Ok(r.finish())
}

/// What a GetStreamingEvents connection serves.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    /// Subscriptions read by the connection.
    pub subscriptions: Vec<String>,
    /// Account reading them.
    pub login: String,
    /// When to send `Closed`.
    pub timeout: Duration,
}

/// GetStreamingEvents: checks the subscriptions, then the server streams.
pub fn get_streaming_events(ctx: &Context<'_>, op: &Element) -> Result<Outcome, Fault> {
    if !ctx.shared.config.server_version.supports_streaming() {
        return Err(Fault::invalid(
            "ErrorInvalidRequest",
            "The request is invalid: GetStreamingEvents is not available in this server version.",
        ));
    }
    let ids: Vec<String> =
        required(op, "SubscriptionIds")?.children.iter().map(|c| c.text.trim().to_string()).collect();
    let minutes: u64 = required(op, "ConnectionTimeout")?
        .text
        .trim()
        .parse()
        .map_err(|_| schema_fault("ConnectionTimeout is not a number"))?;
    if !(1..=30).contains(&minutes) {
        return Err(schema_fault(format!("ConnectionTimeout {minutes} is outside 1..30")));
    }
    let hub = ctx.shared.store.hub();
    // A subscription held by another mailbox server is not found by the one this request reached.
    let bad: Vec<&String> = ids
        .iter()
        .filter(|id| !hub.is_streaming_of(id, &ctx.login) || hub.backend_of(id) != Some(ctx.backend))
        .collect();
    if !bad.is_empty() {
        let mut r = Responses::new("GetStreamingEvents");
        let mut content = String::from("<m:ErrorSubscriptionIds>");
        for id in bad {
            content.push_str(&format!("<t:SubscriptionId>{}</t:SubscriptionId>", escape(id)));
        }
        content.push_str("</m:ErrorSubscriptionIds>");
        r.error(&EwsError::new("ErrorInvalidSubscription", "The subscription is invalid."), &content);
        return Ok(Outcome::Body(r.finish()));
    }
    Ok(Outcome::Stream(StreamPlan {
        subscriptions: ids,
        login: ctx.login.clone(),
        timeout: ctx.shared.config.streaming_minute * minutes as u32,
    }))
}

/// Body of one streaming envelope: notifications (drained from the hub) or a status.
pub fn streaming_body(store: &Store, plan: &StreamPlan, status: Option<&str>) -> Option<String> {
    let mut notes = String::new();
    let mut lost = Vec::new();
    for id in &plan.subscriptions {
        match store.hub().take(id, &plan.login, None, usize::MAX, true) {
            Ok((previous, events, _, _)) if !events.is_empty() => {
                notes.push_str(&format!(
                    "<m:Notification><t:SubscriptionId>{}</t:SubscriptionId><t:PreviousWatermark>{}</t:PreviousWatermark><t:MoreEvents>false</t:MoreEvents>",
                    escape(id),
                    escape(&previous)
                ));
                for q in &events {
                    write_event(&mut notes, store, q);
                }
                notes.push_str("</m:Notification>");
            }
            Ok(_) => {}
            Err(_) => lost.push(id.clone()),
        }
    }
    if notes.is_empty() && status.is_none() && lost.is_empty() {
        return None;
    }
    let mut r = Responses::new("GetStreamingEvents");
    let mut content = String::new();
    if !notes.is_empty() {
        content.push_str("<m:Notifications>");
        content.push_str(&notes);
        content.push_str("</m:Notifications>");
    }
    if !lost.is_empty() {
        content.push_str("<m:ErrorSubscriptionIds>");
        for id in &lost {
            content.push_str(&format!("<t:SubscriptionId>{}</t:SubscriptionId>", escape(id)));
        }
        content.push_str("</m:ErrorSubscriptionIds>");
    }
    if let Some(s) = status {
        content.push_str(&format!("<m:ConnectionStatus>{s}</m:ConnectionStatus>"));
    }
    if lost.is_empty() {
        r.ok(&content);
    } else {
        r.error(&EwsError::new("ErrorSubscriptionNotFound", "The specified subscription was not found."), &content);
    }
    Some(r.finish())
}
