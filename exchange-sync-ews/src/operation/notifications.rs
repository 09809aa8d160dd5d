//! Subscribe (pull, streaming), GetEvents, GetStreamingEvents, Unsubscribe.

use crate::error::{EwsError, Result};
use crate::ids::FolderRef;
use crate::notification::{EventKind, Notification};
use crate::soap::single_message;
use crate::xml::{Element, XmlWriter};

/// The item events a sync connector cares about.
pub const ITEM_EVENTS: [EventKind; 5] =
    [EventKind::Created, EventKind::Deleted, EventKind::Modified, EventKind::Moved, EventKind::Copied];

/// What kind of subscription to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// Pull: poll with GetEvents; the subscription lives `timeout_minutes` (1..1440) past the last poll.
    Pull {
        /// Minutes of inactivity after which the server drops it.
        timeout_minutes: u32,
        /// Resume from this watermark (only right after a short gap; otherwise resubscribe and re-sync).
        watermark: Option<String>,
    },
    /// Streaming: events arrive on a long GetStreamingEvents response (Exchange 2010 SP1+).
    Streaming,
}

/// `m:Subscribe` for item events in some folders (public folders: one folder per request).
pub fn subscribe_request(folders: &[FolderRef], events: &[EventKind], kind: &SubscriptionKind) -> String {
    let mut w = XmlWriter::new();
    w.open("m:Subscribe", &[]);
    let tag = match kind {
        SubscriptionKind::Pull { .. } => "m:PullSubscriptionRequest",
        SubscriptionKind::Streaming => "m:StreamingSubscriptionRequest",
    };
    w.open(tag, &[]).open("t:FolderIds", &[]);
    for f in folders {
        f.write(&mut w);
    }
    w.close("t:FolderIds").open("t:EventTypes", &[]);
    for e in events {
        w.leaf("t:EventType", e.as_str());
    }
    w.close("t:EventTypes");
    if let SubscriptionKind::Pull { timeout_minutes, watermark } = kind {
        if let Some(wm) = watermark {
            w.leaf("t:Watermark", wm);
        }
        w.leaf("t:Timeout", &(*timeout_minutes).clamp(1, 1440).to_string());
    }
    w.close(tag).close("m:Subscribe");
    w.finish()
}

/// A created subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Its id.
    pub id: String,
    /// The starting watermark (pull subscriptions).
    pub watermark: Option<String>,
}

/// Parses a Subscribe response.
pub fn parse_subscribe(body: &Element) -> Result<Subscription> {
    let m = single_message("Subscribe", body)?;
    Ok(Subscription {
        id: m
            .child_text("SubscriptionId")
            .ok_or_else(|| EwsError::protocol("Subscribe", "no SubscriptionId"))?
            .to_owned(),
        watermark: m.child_text("Watermark").map(str::to_owned),
    })
}

/// `m:GetEvents` for a pull subscription.
pub fn get_events_request(subscription_id: &str, watermark: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetEvents", &[])
        .leaf("m:SubscriptionId", subscription_id)
        .leaf("m:Watermark", watermark)
        .close("m:GetEvents");
    w.finish()
}

/// Parses a GetEvents response.
pub fn parse_get_events(body: &Element) -> Result<Notification> {
    let m = single_message("GetEvents", body)?;
    m.child("Notification")
        .and_then(Notification::from_element)
        .ok_or_else(|| EwsError::protocol("GetEvents", "no Notification"))
}

/// `m:GetStreamingEvents` for some streaming subscriptions (up to 200), open for 1..30 minutes.
pub fn get_streaming_events_request(subscription_ids: &[String], connection_timeout_minutes: u32) -> String {
    let mut w = XmlWriter::new();
    w.open("m:GetStreamingEvents", &[]).open("m:SubscriptionIds", &[]);
    for id in subscription_ids {
        w.leaf("t:SubscriptionId", id);
    }
    w.close("m:SubscriptionIds")
        .leaf("m:ConnectionTimeout", &connection_timeout_minutes.clamp(1, 30).to_string())
        .close("m:GetStreamingEvents");
    w.finish()
}

/// One envelope of a streaming response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamingBatch {
    /// The notifications it carries (none for a heartbeat).
    pub notifications: Vec<Notification>,
    /// Subscriptions the server reports as failed (resubscribe them).
    pub failed_subscriptions: Vec<String>,
    /// The error of a failed message (e.g. ErrorSubscriptionNotFound), if any.
    pub error: Option<String>,
    /// True when the server says the connection is closing (`ConnectionStatus` `Closed`).
    pub closed: bool,
}

/// Parses one envelope body of a GetStreamingEvents response. Failed messages still list the
/// subscriptions concerned and the connection status, so every message is read whatever its class.
pub fn parse_streaming_batch(body: &Element) -> Result<StreamingBatch> {
    let messages = body
        .child("ResponseMessages")
        .ok_or_else(|| EwsError::protocol("GetStreamingEvents", "no ResponseMessages"))?;
    let mut batch = StreamingBatch::default();
    for m in &messages.children {
        read_streaming_message(m, &mut batch);
        if m.attr("ResponseClass") == Some("Error") {
            batch.error = Some(m.child_text("ResponseCode").unwrap_or("Error").to_owned());
        }
    }
    Ok(batch)
}

fn read_streaming_message(m: &Element, batch: &mut StreamingBatch) {
    if let Some(n) = m.child("Notifications") {
        batch.notifications.extend(n.children_named("Notification").filter_map(Notification::from_element));
    }
    if let Some(ids) = m.child("ErrorSubscriptionIds") {
        batch.failed_subscriptions.extend(ids.children.iter().map(|i| i.text.trim().to_owned()));
    }
    if m.child_text("ConnectionStatus") == Some("Closed") {
        batch.closed = true;
    }
}

/// `m:Unsubscribe`.
pub fn unsubscribe_request(subscription_id: &str) -> String {
    let mut w = XmlWriter::new();
    w.open("m:Unsubscribe", &[]).leaf("m:SubscriptionId", subscription_id).close("m:Unsubscribe");
    w.finish()
}

/// Parses an Unsubscribe response.
pub fn parse_unsubscribe(body: &Element) -> Result<()> {
    single_message("Unsubscribe", body).map(|_| ())
}
