//! EWS operations, one module per family, and what they share: the request context, folder and
//! item id resolution with access checks, and the response message writer.

pub mod convert;
pub mod directory;
pub mod folders;
pub mod items;
pub mod notify;
pub mod sync;

use crate::config::ServerVersion;
use crate::emulator::Shared;
use crate::response_code::EwsError;
use crate::soap::Fault;
use crate::store::{IdKind, Mailbox, MailboxKind, Permission, decode_id, decode_occurrence_id};
use crate::xml::{Element, escape};

/// Who is calling and on whose behalf.
#[derive(Debug)]
pub struct Context<'a> {
    /// Emulator state.
    pub shared: &'a Shared,
    /// Address of the authenticated account.
    pub login: String,
    /// Address whose rights apply (the impersonated user, or the login).
    pub acting: String,
    /// Whether `acting` comes from ExchangeImpersonation.
    pub impersonating: bool,
    /// The version the client asked for.
    pub request_version: ServerVersion,
    /// Items of a batch processed before ErrorBatchProcessingStopped (fault injection).
    pub batch_limit: Option<usize>,
    /// The mailbox server the request was routed to (affinity cookie, else `X-AnchorMailbox`,
    /// else the acting mailbox).
    pub backend: u32,
}

impl Context<'_> {
    /// Whether item `index` of a batch is past the injected stop.
    pub fn batch_stopped(&self, index: usize) -> bool {
        self.batch_limit.is_some_and(|limit| index >= limit)
    }
}

/// What an operation produced.
#[derive(Debug)]
pub enum Outcome {
    /// A normal response body (the element inside `s:Body`).
    Body(String),
    /// A GetStreamingEvents connection to serve.
    Stream(notify::StreamPlan),
}

/// Operations that modify the store (fault injection "drop after write" applies to these).
pub fn is_write(operation: &str) -> bool {
    matches!(operation, "CreateItem" | "UpdateItem" | "DeleteItem" | "MoveItem" | "CreateFolder")
}

/// Operations that take batches of items (where ErrorBatchProcessingStopped can be injected).
pub fn is_item_batch(operation: &str) -> bool {
    matches!(operation, "GetItem" | "CreateItem" | "UpdateItem" | "DeleteItem" | "MoveItem")
}

/// Runs one operation.
pub fn dispatch(ctx: &Context<'_>, op: &Element) -> Result<Outcome, Fault> {
    let body = match &*op.name {
        "GetFolder" => folders::get_folder(ctx, op),
        "FindFolder" => folders::find_folder(ctx, op),
        "CreateFolder" => folders::create_folder(ctx, op),
        "SyncFolderHierarchy" => sync::sync_folder_hierarchy(ctx, op),
        "GetItem" => items::get_item(ctx, op),
        "FindItem" => items::find_item(ctx, op),
        "CreateItem" => items::create_item(ctx, op),
        "UpdateItem" => items::update_item(ctx, op),
        "DeleteItem" => items::delete_item(ctx, op),
        "MoveItem" => items::move_item(ctx, op),
        "SyncFolderItems" => sync::sync_folder_items(ctx, op),
        "Subscribe" => notify::subscribe(ctx, op),
        "GetEvents" => notify::get_events(ctx, op),
        "Unsubscribe" => notify::unsubscribe(ctx, op),
        "GetStreamingEvents" => return notify::get_streaming_events(ctx, op),
        "ExpandDL" => directory::expand_dl(ctx, op),
        "ConvertId" => convert::convert_id(ctx, op),
        other => {
            return Err(Fault::invalid(
                "ErrorInvalidRequest",
                format!("The request is invalid: the operation {other} is not supported by this server."),
            ));
        }
    }?;
    Ok(Outcome::Body(body))
}

/// An answer with a single ErrorServerBusy response message for an operation, or None for an
/// operation the emulator does not serve.
pub fn busy_message(operation: &str, backoff_ms: u64) -> Option<String> {
    const OPERATIONS: &[&str] = &[
        "GetFolder",
        "FindFolder",
        "CreateFolder",
        "SyncFolderHierarchy",
        "GetItem",
        "FindItem",
        "CreateItem",
        "UpdateItem",
        "DeleteItem",
        "MoveItem",
        "SyncFolderItems",
        "Subscribe",
        "GetEvents",
        "Unsubscribe",
        "GetStreamingEvents",
        "ExpandDL",
        "ConvertId",
    ];
    let op = *OPERATIONS.iter().find(|o| **o == operation)?;
    let mut r = Responses::new(op);
    let items = match op {
        "GetItem" | "CreateItem" | "UpdateItem" | "MoveItem" => "<m:Items/>",
        "SyncFolderItems" => "<m:SyncState/><m:IncludesLastItemInRange>true</m:IncludesLastItemInRange>",
        "SyncFolderHierarchy" => "<m:SyncState/><m:IncludesLastFolderInRange>true</m:IncludesLastFolderInRange>",
        _ => "",
    };
    let err = EwsError::new("ErrorServerBusy", "The server cannot service this request right now. Try again later.");
    r.error_with_xml(&err, &format!(r#"<t:Value Name="BackOffMilliseconds">{backoff_ms}</t:Value>"#), items);
    Some(r.finish())
}

/// Builds `<m:XResponse><m:ResponseMessages>...` bodies.
#[derive(Debug)]
pub struct Responses {
    out: String,
    operation: &'static str,
}

impl Responses {
    /// Starts the response of an operation (`GetItem` gives `m:GetItemResponse`).
    pub fn new(operation: &'static str) -> Self {
        let mut out = String::with_capacity(4096);
        out.push_str("<m:");
        out.push_str(operation);
        out.push_str("Response><m:ResponseMessages>");
        Responses { out, operation }
    }

    /// Adds a successful message with its content.
    pub fn ok(&mut self, content: &str) {
        self.open("Success");
        self.out.push_str("<m:ResponseCode>NoError</m:ResponseCode>");
        self.out.push_str(content);
        self.close();
    }

    /// Adds an error message; `content` is what the message type requires even on errors
    /// (e.g. an empty `m:Items`).
    pub fn error(&mut self, err: &EwsError, content: &str) {
        self.open("Error");
        self.out.push_str("<m:MessageText>");
        self.out.push_str(&escape(&err.message));
        self.out.push_str("</m:MessageText><m:ResponseCode>");
        self.out.push_str(err.code);
        self.out.push_str("</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>");
        self.out.push_str(content);
        self.close();
    }

    /// Adds an error message with `m:MessageXml` content (e.g. BackOffMilliseconds).
    pub fn error_with_xml(&mut self, err: &EwsError, message_xml: &str, content: &str) {
        self.open("Error");
        self.out.push_str("<m:MessageText>");
        self.out.push_str(&escape(&err.message));
        self.out.push_str("</m:MessageText><m:ResponseCode>");
        self.out.push_str(err.code);
        self.out.push_str("</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:MessageXml>");
        self.out.push_str(message_xml);
        self.out.push_str("</m:MessageXml>");
        self.out.push_str(content);
        self.close();
    }

    /// Adds the Warning Exchange gives to the items of a batch it did not process.
    pub fn stopped(&mut self, content: &str) {
        self.open("Warning");
        self.out.push_str("<m:MessageText>The operation was not performed because an earlier item of the batch failed or the request exceeded a limit.</m:MessageText><m:ResponseCode>ErrorBatchProcessingStopped</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>");
        self.out.push_str(content);
        self.close();
    }

    /// Adds either outcome.
    pub fn push(&mut self, r: Result<String, EwsError>, error_content: &str) {
        match r {
            Ok(c) => self.ok(&c),
            Err(e) => self.error(&e, error_content),
        }
    }

    fn open(&mut self, class: &str) {
        self.out.push_str("<m:");
        self.out.push_str(self.operation);
        self.out.push_str("ResponseMessage ResponseClass=\"");
        self.out.push_str(class);
        self.out.push_str("\">");
    }

    fn close(&mut self) {
        self.out.push_str("</m:");
        self.out.push_str(self.operation);
        self.out.push_str("ResponseMessage>");
    }

    /// The finished body.
    pub fn finish(mut self) -> String {
        self.out.push_str("</m:ResponseMessages></m:");
        self.out.push_str(self.operation);
        self.out.push_str("Response>");
        self.out
    }
}

/// A folder reference resolved to (mailbox index, folder number).
pub type FolderRef = (u32, u64);

/// Resolves a `t:FolderId` or `t:DistinguishedFolderId` and checks that the acting user holds
/// at least `needed` on it.
pub fn resolve_folder(ctx: &Context<'_>, e: &Element, needed: Permission) -> Result<FolderRef, EwsError> {
    let store = &ctx.shared.store;
    let (index, number) = match &*e.name {
        "FolderId" => {
            let id = e.attr("Id").ok_or_else(EwsError::id_malformed)?;
            decode_id(IdKind::Folder, id).ok_or_else(EwsError::id_malformed)?
        }
        "DistinguishedFolderId" => {
            let name = e.attr("Id").unwrap_or("");
            if name.starts_with("recoverableitems") && !dumpster_reachable(ctx) {
                return Err(EwsError::folder_not_found());
            }
            let index = if name == "publicfoldersroot" {
                store.public_index()
            } else if let Some(address) = e.child("Mailbox").and_then(|m| m.child_text("EmailAddress")) {
                store.mailbox_index(address).ok_or_else(|| EwsError::no_mailbox(address))?
            } else {
                store.mailbox_index(&ctx.acting).ok_or_else(|| EwsError::no_mailbox(&ctx.acting))?
            };
            let number = store
                .read(index, |mb| mb.distinguished.get(name).copied())
                .flatten()
                .ok_or_else(EwsError::folder_not_found)?;
            (index, number)
        }
        _ => {
            return Err(EwsError::invalid_request(format!("{} is not a folder id", e.name)));
        }
    };
    let permission = store
        .read(index, |mb| mb.folders.contains_key(&number).then(|| rights(ctx, mb, number)))
        .flatten()
        .ok_or_else(EwsError::folder_not_found)?;
    if permission < needed {
        return Err(EwsError::access_denied());
    }
    Ok((index, number))
}

/// Whether EWS reaches the Recoverable Items folders: the `recoverableitems*` distinguished
/// folder ids exist from Exchange 2010 SP1 on (before, a soft-deleted item is only marked and EWS
/// cannot see it).
pub fn dumpster_reachable(ctx: &Context<'_>) -> bool {
    ctx.shared.config.server_version >= ServerVersion::Exchange2010Sp1
}

/// Rights of the acting user on a folder.
pub fn rights(ctx: &Context<'_>, mb: &Mailbox, folder: u64) -> Permission {
    mb.permission(folder, &ctx.acting)
}

/// Whether the acting user owns the mailbox (needed for subscriptions: delegates cannot).
pub fn owns(ctx: &Context<'_>, mb: &Mailbox) -> bool {
    mb.kind == MailboxKind::User && mb.address == ctx.acting
}

/// Resolves a `t:ItemId` to (mailbox, item number) and checks `needed` on its folder.
pub fn resolve_item(ctx: &Context<'_>, e: &Element, needed: Permission) -> Result<(u32, u64), EwsError> {
    let id = e.attr("Id").ok_or_else(EwsError::id_malformed)?;
    let (index, number) = decode_id(IdKind::Item, id).ok_or_else(EwsError::id_malformed)?;
    let permission = ctx
        .shared
        .store
        .read(index, |mb| {
            let item = mb.items.get(&number)?;
            let hidden = !dumpster_reachable(ctx)
                && mb.distinguished.get("recoverableitemsroot").is_some_and(|r| mb.is_below(item.folder, *r));
            (!hidden).then(|| rights(ctx, mb, item.folder))
        })
        .flatten()
        .ok_or_else(EwsError::item_not_found)?;
    if permission < needed {
        return Err(EwsError::access_denied());
    }
    Ok((index, number))
}

/// What an item id element names: an item, or an occurrence of a recurring master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemTarget {
    /// An item (mailbox, number); a `RecurringMasterItemId` resolves to its master.
    Item(u32, u64),
    /// An occurrence (mailbox, master number, instance index).
    Occurrence(u32, u64, u32),
}

/// Resolves `t:ItemId` (of an item or of an occurrence), `t:OccurrenceItemId` (master id and
/// instance index) or `t:RecurringMasterItemId` (the master of an occurrence id) and checks
/// `needed` on the folder of the item or master.
pub fn resolve_target(ctx: &Context<'_>, e: &Element, needed: Permission) -> Result<ItemTarget, EwsError> {
    let master_of = |id: &str| -> Result<(u32, u64), EwsError> {
        if let Some((index, number, _)) = decode_occurrence_id(id) {
            return Ok((index, number));
        }
        resolve_item(ctx, &Element::t("ItemId").with_attr("Id", id), needed)
    };
    match &*e.name {
        "ItemId" => {
            let id = e.attr("Id").ok_or_else(EwsError::id_malformed)?;
            match decode_occurrence_id(id) {
                Some((index, number, instance)) => {
                    resolve_item(
                        ctx,
                        &Element::t("ItemId").with_attr("Id", crate::store::encode_id(IdKind::Item, index, number)),
                        needed,
                    )?;
                    Ok(ItemTarget::Occurrence(index, number, instance))
                }
                None => resolve_item(ctx, e, needed).map(|(m, n)| ItemTarget::Item(m, n)),
            }
        }
        "OccurrenceItemId" => {
            let master = e.attr("RecurringMasterId").ok_or_else(EwsError::id_malformed)?;
            let (index, number) = master_of(master)?;
            let instance = e
                .attr("InstanceIndex")
                .and_then(|i| i.trim().parse::<u32>().ok())
                .filter(|i| *i > 0)
                .ok_or_else(|| EwsError::invalid_request("InstanceIndex must be a positive number"))?;
            Ok(ItemTarget::Occurrence(index, number, instance))
        }
        "RecurringMasterItemId" => {
            let id = e.attr("OccurrenceId").ok_or_else(EwsError::id_malformed)?;
            let (index, number) = master_of(id)?;
            resolve_item(
                ctx,
                &Element::t("ItemId").with_attr("Id", crate::store::encode_id(IdKind::Item, index, number)),
                needed,
            )?;
            Ok(ItemTarget::Item(index, number))
        }
        other => Err(EwsError::invalid_request(format!("{other} is not an item id"))),
    }
}

/// A schema-level problem in a valid envelope: Exchange answers these as a fault.
pub fn schema_fault(why: impl Into<String>) -> Fault {
    Fault::invalid("ErrorSchemaValidation", format!("The request failed schema validation: {}", why.into()))
}

/// The child element, or a schema fault saying it is missing.
pub fn required<'e>(e: &'e Element, name: &str) -> Result<&'e Element, Fault> {
    e.child(name).ok_or_else(|| schema_fault(format!("{} requires {name}", e.name)))
}
