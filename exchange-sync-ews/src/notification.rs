//! Change notifications (pull and streaming): events and the notifications that carry them.

use chrono::{DateTime, Utc};

use crate::ids::{FolderId, ItemId};
use crate::xml::Element;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// An item or folder was copied.
    Copied,
    /// An item or folder was created.
    Created,
    /// An item or folder was deleted.
    Deleted,
    /// An item or folder was modified.
    Modified,
    /// An item or folder was moved.
    Moved,
    /// New mail arrived.
    NewMail,
    /// A keep-alive status event (pull subscriptions).
    Status,
    /// Free/busy changed.
    FreeBusyChanged,
}

impl EventKind {
    fn from_element_name(name: &str) -> Option<Self> {
        Some(match name {
            "CopiedEvent" => Self::Copied,
            "CreatedEvent" => Self::Created,
            "DeletedEvent" => Self::Deleted,
            "ModifiedEvent" => Self::Modified,
            "MovedEvent" => Self::Moved,
            "NewMailEvent" => Self::NewMail,
            "StatusEvent" => Self::Status,
            "FreeBusyChangedEvent" => Self::FreeBusyChanged,
            _ => return None,
        })
    }

    /// The schema name used in `EventTypes` (`CreatedEvent`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Copied => "CopiedEvent",
            Self::Created => "CreatedEvent",
            Self::Deleted => "DeletedEvent",
            Self::Modified => "ModifiedEvent",
            Self::Moved => "MovedEvent",
            Self::NewMail => "NewMailEvent",
            Self::Status => "StatusEvent",
            Self::FreeBusyChanged => "FreeBusyChangedEvent",
        }
    }
}

/// One event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The watermark after this event (pull subscriptions resume from it).
    pub watermark: Option<String>,
    /// When it happened.
    pub timestamp: Option<DateTime<Utc>>,
    /// The item concerned, for item events.
    pub item_id: Option<ItemId>,
    /// The folder concerned, for folder events.
    pub folder_id: Option<FolderId>,
    /// The folder the item or folder is in.
    pub parent_folder_id: Option<FolderId>,
    /// For moves and copies: where it was before.
    pub old_parent_folder_id: Option<FolderId>,
}

/// A notification: the events of one subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The subscription.
    pub subscription_id: String,
    /// The watermark before these events.
    pub previous_watermark: Option<String>,
    /// Whether more events wait on the server (pull).
    pub more_events: bool,
    /// The events in order.
    pub events: Vec<Event>,
}

impl Notification {
    /// Reads a `Notification` element (the client accepts both `m:` and `t:`: matching is by local name).
    pub fn from_element(e: &Element) -> Option<Self> {
        Some(Self {
            subscription_id: e.child_text("SubscriptionId")?.to_owned(),
            previous_watermark: e.child_text("PreviousWatermark").map(str::to_owned),
            more_events: e.child_text("MoreEvents") == Some("true"),
            events: e
                .children
                .iter()
                .filter_map(|c| {
                    let kind = EventKind::from_element_name(&c.name)?;
                    Some(Event {
                        kind,
                        watermark: c.child_text("Watermark").map(str::to_owned),
                        timestamp: c
                            .child_text("TimeStamp")
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map(|d| d.with_timezone(&Utc)),
                        item_id: c.child("ItemId").and_then(ItemId::from_element),
                        folder_id: c.child("FolderId").and_then(FolderId::from_element),
                        parent_folder_id: c.child("ParentFolderId").and_then(FolderId::from_element),
                        old_parent_folder_id: c.child("OldParentFolderId").and_then(FolderId::from_element),
                    })
                })
                .collect(),
        })
    }

    /// The newest watermark in this notification.
    pub fn last_watermark(&self) -> Option<&str> {
        self.events.iter().rev().find_map(|e| e.watermark.as_deref()).or(self.previous_watermark.as_deref())
    }
}
