//! Change-notification subscriptions (`/subscriptions`) and the delivery of notifications, as
//! Graph v1.0 does them for the contacts of a contact folder.
//!
//! - `POST /subscriptions` checks the resource (`users/{id}/contactFolders/{id}/contacts` or
//!   `users/{id}/contacts`), the change types, the expiry (in the future, at most
//!   [`MAX_LIFETIME_MINUTES`], and a `lifecycleNotificationUrl` when longer than an hour), then
//!   runs the validation handshake: it posts `?validationToken=...` to the notification URL (and
//!   the lifecycle URL) and creates the subscription only when each answers `200` with the
//!   token as its plain-text body within [`VALIDATION_TIMEOUT`].
//! - `PATCH /subscriptions/{id}` renews (a new `expirationDateTime`), `DELETE` removes,
//!   `GET` reads. A subscription whose expiry passed is gone (`404`), as in Graph.
//! - A delivery loop looks at the subscribed folders every [`DELIVERY_TICK`] and posts a
//!   `changeNotificationCollection` for the contacts created, updated or deleted since it last
//!   looked (whoever changed them: a client over HTTP or a test through the store), with the
//!   subscription's `clientState`. A failed delivery is tried [`DELIVERY_ATTEMPTS`] times.
//! - Lifecycle events (`reauthorizationRequired`, `subscriptionRemoved`, `missed`) are sent on a
//!   test's request ([`crate::RunningGraphEmulator::send_lifecycle_event`]) to the lifecycle URL.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::error::GraphError;
use crate::store::Store;
use crate::trace::TraceWriter;

/// The longest lifetime Graph grants a subscription on Outlook contacts (under 7 days).
pub const MAX_LIFETIME_MINUTES: i64 = 10_080;
/// How long the notification endpoint has to answer the validation handshake.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the delivery loop looks for changes in subscribed folders.
pub const DELIVERY_TICK: Duration = Duration::from_millis(50);
/// How often a notification is posted before it is given up.
pub const DELIVERY_ATTEMPTS: u32 = 3;

/// One subscription as stored.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Its id (a GUID).
    pub id: String,
    /// The resource as the client wrote it.
    pub resource: String,
    /// `created,updated,deleted` or a part of it.
    pub change_type: String,
    /// Where change notifications go.
    pub notification_url: String,
    /// Where lifecycle notifications go.
    pub lifecycle_url: Option<String>,
    /// The client's secret, echoed in every notification.
    pub client_state: Option<String>,
    /// When it ends unless renewed.
    pub expiration: DateTime<Utc>,
    /// How often it was renewed.
    pub renewals: u32,
    mailbox: String,
    folder_id: String,
    /// Changes up to this store sequence number were looked at.
    cursor: u64,
    /// Contacts known in the folder (to tell a creation from an update).
    known: BTreeSet<String>,
}

impl Subscription {
    fn render(&self, application_id: &str) -> Value {
        json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": application_id,
            "changeType": self.change_type,
            "clientState": self.client_state,
            "notificationUrl": self.notification_url,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": timestamp(self.expiration),
            "creatorId": application_id,
            "includeResourceData": false,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": null,
            "encryptionCertificateId": null,
            "notificationQueryOptions": null,
            "notificationUrlAppId": null,
        })
    }

    fn wants(&self, change: &str) -> bool {
        self.change_type.split(',').any(|c| c.trim() == change)
    }
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A notification ready to post.
#[derive(Debug)]
struct Delivery {
    url: String,
    body: Value,
}

/// Every subscription of the tenant and the HTTP client that delivers to them.
#[derive(Debug)]
pub struct Subscriptions {
    all: Mutex<BTreeMap<String, Subscription>>,
    http: reqwest::Client,
    /// Notification posts answered with a success status.
    pub delivered: AtomicU64,
    /// Notification posts given up after every attempt failed.
    pub failed: AtomicU64,
    /// Subscriptions refused because the endpoint failed the validation handshake.
    pub validation_failures: AtomicU64,
    /// While set, change notifications are dropped instead of posted (a test knob: notifications
    /// Graph failed to deliver, which its `missed` lifecycle event then announces).
    pub dropping: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Default for Subscriptions {
    fn default() -> Self {
        // Redirects are not followed: Graph does not either, and a notification must reach the
        // URL the subscriber validated.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(VALIDATION_TIMEOUT)
            .build()
            .unwrap_or_default();
        Subscriptions {
            all: Mutex::new(BTreeMap::new()),
            http,
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            validation_failures: AtomicU64::new(0),
            dropping: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// `users/{u}/contactFolders/{f}/contacts` or `users/{u}/contacts`: the mailbox and folder id.
fn parse_resource(store: &Store, resource: &str) -> Result<(String, String), GraphError> {
    let unsupported = || {
        GraphError::bad_request(
            "InvalidRequest",
            format!(
                "Resource '{resource}' is not supported: subscribe to users/{{id}}/contactFolders/{{id}}/contacts."
            ),
        )
    };
    let segments: Vec<String> =
        resource.trim_start_matches('/').split('/').map(crate::odata::percent_decode).collect::<Vec<_>>();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (user, folder) = match s.as_slice() {
        [users, u, folders, f, contacts]
            if users.eq_ignore_ascii_case("users")
                && folders.eq_ignore_ascii_case("contactFolders")
                && contacts.eq_ignore_ascii_case("contacts") =>
        {
            (*u, Some(*f))
        }
        [users, u, contacts] if users.eq_ignore_ascii_case("users") && contacts.eq_ignore_ascii_case("contacts") => {
            (*u, None)
        }
        _ => return Err(unsupported()),
    };
    let mailbox = store
        .mailbox_key(user)
        .ok_or_else(|| GraphError::not_found("ResourceNotFound", format!("User '{user}' does not exist.")))?;
    let folder_id = store.folder_id(&mailbox, folder)?;
    Ok((mailbox, folder_id))
}

fn parse_expiry(body: &Value) -> Result<DateTime<Utc>, GraphError> {
    let raw = body
        .get("expirationDateTime")
        .and_then(Value::as_str)
        .ok_or_else(|| GraphError::bad_request("InvalidRequest", "expirationDateTime is required.".into()))?;
    let at = DateTime::parse_from_rfc3339(raw)
        .map_err(|_| GraphError::bad_request("InvalidRequest", format!("'{raw}' is not a valid expirationDateTime.")))?
        .with_timezone(&Utc);
    let now = Utc::now();
    if at <= now {
        return Err(GraphError::bad_request(
            "InvalidRequest",
            "Subscription expiration can only be a time in the future.".into(),
        ));
    }
    if at > now + chrono::Duration::minutes(MAX_LIFETIME_MINUTES) {
        return Err(GraphError::bad_request(
            "InvalidRequest",
            format!("Subscription expiration can only be {MAX_LIFETIME_MINUTES} minutes in the future."),
        ));
    }
    Ok(at)
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Subscriptions {
    /// A snapshot of every live subscription.
    pub fn list(&self) -> Vec<Subscription> {
        let now = Utc::now();
        lock(&self.all).values().filter(|s| s.expiration > now).cloned().collect()
    }

    /// The live subscription with this id.
    fn live(&self, id: &str) -> Result<Subscription, GraphError> {
        let mut all = lock(&self.all);
        match all.get(id) {
            Some(s) if s.expiration > Utc::now() => Ok(s.clone()),
            Some(_) => {
                all.remove(id);
                Err(Self::missing(id))
            }
            None => Err(Self::missing(id)),
        }
    }

    fn missing(id: &str) -> GraphError {
        GraphError::not_found("ResourceNotFound", format!("The object was not found: subscription '{id}'."))
    }

    /// Posts the validation token to `url` and checks the answer: `200`, the token as the body.
    async fn validate(&self, url: &str) -> Result<(), GraphError> {
        let token = format!(
            "Validation: Testing client application reachability for subscription Request-Id: {}",
            uuid::Uuid::new_v4()
        );
        let sep = if url.contains('?') { '&' } else { '?' };
        let target = format!("{url}{sep}validationToken={}", percent_encode(&token));
        let refused = |why: String| {
            GraphError::bad_request(
                "ValidationError",
                format!(
                    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request: {why}"
                ),
            )
        };
        let answer = self
            .http
            .post(&target)
            .header("Content-Type", "text/plain; charset=utf-8")
            .timeout(VALIDATION_TIMEOUT)
            .send()
            .await
            .map_err(|e| refused(format!("{url} could not be reached ({e})")))?;
        let status = answer.status();
        let body = answer.text().await.map_err(|e| refused(format!("the answer could not be read ({e})")))?;
        if status.as_u16() != 200 {
            return Err(refused(format!("{url} answered {status}")));
        }
        if body != token {
            return Err(refused(format!("{url} did not answer the validation token as its body")));
        }
        Ok(())
    }

    /// `POST /subscriptions`.
    pub(crate) async fn create(
        &self,
        store: &Mutex<Store>,
        application_id: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let resource = text("resource")
            .ok_or_else(|| GraphError::bad_request("InvalidRequest", "resource is required.".into()))?;
        let change_type = text("changeType")
            .ok_or_else(|| GraphError::bad_request("InvalidRequest", "changeType is required.".into()))?;
        for c in change_type.split(',') {
            if !matches!(c.trim(), "created" | "updated" | "deleted") {
                return Err(GraphError::bad_request("InvalidRequest", format!("Invalid changeType '{c}'.")));
            }
        }
        let notification_url = text("notificationUrl")
            .ok_or_else(|| GraphError::bad_request("InvalidRequest", "notificationUrl is required.".into()))?;
        let lifecycle_url = text("lifecycleNotificationUrl");
        for url in std::iter::once(&notification_url).chain(lifecycle_url.as_ref()) {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(GraphError::bad_request(
                    "InvalidRequest",
                    format!("The notification URL '{url}' must be an absolute HTTPS URL."),
                ));
            }
        }
        let client_state = text("clientState");
        if client_state.as_ref().is_some_and(|s| s.len() > 128) {
            return Err(GraphError::bad_request("InvalidRequest", "clientState is longer than 128 characters.".into()));
        }
        let expiration = parse_expiry(body)?;
        if lifecycle_url.is_none() && expiration > Utc::now() + chrono::Duration::hours(1) {
            return Err(GraphError::bad_request(
                "InvalidRequest",
                "lifecycleNotificationUrl is required for subscriptions longer than an hour on this resource.".into(),
            ));
        }
        let (mailbox, folder_id) = parse_resource(&lock(store), &resource)?;
        let validated = match &lifecycle_url {
            Some(url) => match self.validate(&notification_url).await {
                Ok(()) => self.validate(url).await,
                Err(e) => Err(e),
            },
            None => self.validate(&notification_url).await,
        };
        if let Err(e) = validated {
            self.validation_failures.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        let (cursor, known) = {
            let store = lock(store);
            let known = store.folder_contacts(&mailbox, &folder_id).into_iter().map(|c| c.id).collect();
            (store.sequence(), known)
        };
        let subscription = Subscription {
            id: uuid::Uuid::new_v4().to_string(),
            resource,
            change_type,
            notification_url,
            lifecycle_url,
            client_state,
            expiration,
            renewals: 0,
            mailbox,
            folder_id,
            cursor,
            known,
        };
        let rendered = subscription.render(application_id);
        tracing::debug!(subscription = %subscription.id, resource = %subscription.resource, "subscription created");
        lock(&self.all).insert(subscription.id.clone(), subscription);
        Ok(rendered)
    }

    /// `PATCH /subscriptions/{id}`: a new expiry.
    pub(crate) fn renew(&self, id: &str, application_id: &str, body: &Value) -> Result<Value, GraphError> {
        self.live(id)?;
        let expiration = parse_expiry(body)?;
        let mut all = lock(&self.all);
        let s = all.get_mut(id).ok_or_else(|| Self::missing(id))?;
        s.expiration = expiration;
        s.renewals += 1;
        Ok(s.render(application_id))
    }

    /// `GET /subscriptions/{id}`.
    pub(crate) fn get(&self, id: &str, application_id: &str) -> Result<Value, GraphError> {
        Ok(self.live(id)?.render(application_id))
    }

    /// `GET /subscriptions`.
    pub(crate) fn render_all(&self, application_id: &str) -> Value {
        let value: Vec<Value> = self.list().iter().map(|s| s.render(application_id)).collect();
        json!({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#subscriptions", "value": value})
    }

    /// `DELETE /subscriptions/{id}`.
    pub(crate) fn delete(&self, id: &str) -> Result<(), GraphError> {
        self.live(id)?;
        lock(&self.all).remove(id);
        Ok(())
    }

    /// The change notifications due now: every subscribed folder's changes since its cursor.
    fn due(&self, store: &Store, tenant_id: &str) -> Vec<Delivery> {
        let now = Utc::now();
        let mut all = lock(&self.all);
        all.retain(|_, s| s.expiration > now);
        let sequence = store.sequence();
        let mut out = Vec::new();
        for s in all.values_mut() {
            if s.cursor >= sequence {
                continue;
            }
            let mut notes = Vec::new();
            let Ok(m) = store.mailbox(&s.mailbox) else { continue };
            let user_id = m.id.clone();
            let Some(folder) = m.folders.get(&s.folder_id) else { continue };
            let mut changed: Vec<(u64, &str, Option<&str>)> = folder
                .contacts
                .values()
                .filter(|c| c.seq > s.cursor)
                .map(|c| (c.seq, c.id.as_str(), Some(c.change_key.as_str())))
                .collect();
            changed.extend(
                folder.tombstones.iter().filter(|(_, q)| **q > s.cursor).map(|(id, q)| (*q, id.as_str(), None)),
            );
            changed.sort();
            for (_, id, change_key) in changed {
                let change = match change_key {
                    None => {
                        s.known.remove(id);
                        "deleted"
                    }
                    Some(_) if s.known.insert(id.to_owned()) => "created",
                    Some(_) => "updated",
                };
                if !s.wants(change) {
                    continue;
                }
                let resource = format!("Users/{user_id}/Contacts/{id}");
                let mut data = json!({"@odata.type": "#Microsoft.Graph.Contact", "@odata.id": resource, "id": id});
                if let Some(key) = change_key {
                    data["@odata.etag"] = json!(format!("W/\"{key}\""));
                }
                notes.push(json!({
                    "subscriptionId": s.id,
                    "subscriptionExpirationDateTime": timestamp(s.expiration),
                    "changeType": change,
                    "resource": resource,
                    "resourceData": data,
                    "clientState": s.client_state,
                    "tenantId": tenant_id,
                }));
            }
            s.cursor = sequence;
            if !notes.is_empty() {
                out.push(Delivery { url: s.notification_url.clone(), body: json!({"value": notes}) });
            }
        }
        out
    }

    /// A lifecycle notification for subscription `id`; `subscriptionRemoved` removes it first.
    pub(crate) fn lifecycle(&self, id: &str, event: &str, tenant_id: &str) -> Result<(String, Value), GraphError> {
        if !matches!(event, "reauthorizationRequired" | "subscriptionRemoved" | "missed") {
            return Err(GraphError::bad_request("InvalidRequest", format!("Unknown lifecycle event '{event}'.")));
        }
        let s = self.live(id)?;
        if event == "subscriptionRemoved" {
            lock(&self.all).remove(id);
        }
        let url = s.lifecycle_url.clone().unwrap_or_else(|| s.notification_url.clone());
        let body = json!({"value": [{
            "subscriptionId": s.id,
            "subscriptionExpirationDateTime": timestamp(s.expiration),
            "lifecycleEvent": event,
            "resource": s.resource,
            "clientState": s.client_state,
            "tenantId": tenant_id,
        }]});
        Ok((url, body))
    }

    /// Posts one notification collection, trying [`DELIVERY_ATTEMPTS`] times.
    pub(crate) async fn post(&self, route: &str, url: &str, body: &Value, trace: Option<&TraceWriter>) -> bool {
        if let Some(t) = trace {
            t.record_typed("microsoft.graph.changeNotificationCollection", route, body);
        }
        for attempt in 1..=DELIVERY_ATTEMPTS {
            match self.http.post(url).json(body).send().await {
                Ok(r) if r.status().is_success() => {
                    self.delivered.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Ok(r) => tracing::debug!(url, status = %r.status(), attempt, "notification refused"),
                Err(e) => tracing::debug!(url, error = %e, attempt, "notification not delivered"),
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
        false
    }
}

/// Delivers change notifications until `stop` turns true.
pub(crate) async fn deliver(
    shared: std::sync::Arc<crate::server::Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(DELIVERY_TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let due = {
            let store = shared.store();
            shared.subscriptions.due(&store, &shared.config.tenant_id)
        };
        if shared.subscriptions.dropping.load(Ordering::Relaxed) {
            continue;
        }
        for d in due {
            let shared = std::sync::Arc::clone(&shared);
            tokio::spawn(async move {
                shared.subscriptions.post("notification", &d.url, &d.body, shared.trace()).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_a_contact_folder_of_a_mailbox() {
        let mut store = Store::default();
        store.add_mailbox("alice@contoso.test", "Alice", false);
        let folder = store.create_folder("alice@contoso.test", &json!({"displayName": "Team"})).unwrap();
        let id = folder["id"].as_str().unwrap();
        let (m, f) =
            parse_resource(&store, &format!("/users/alice@contoso.test/contactFolders/{id}/contacts")).unwrap();
        assert_eq!((m.as_str(), f.as_str()), ("alice@contoso.test", id));
        assert!(parse_resource(&store, "users/alice@contoso.test/contacts").is_ok());
        assert_eq!(parse_resource(&store, "users/alice@contoso.test/messages").unwrap_err().status, 400);
        assert_eq!(parse_resource(&store, "users/nobody@contoso.test/contacts").unwrap_err().status, 404);
    }

    #[test]
    fn expiry_must_be_in_the_future_and_within_the_maximum() {
        let at = |d: chrono::Duration| json!({"expirationDateTime": timestamp(Utc::now() + d)});
        assert!(parse_expiry(&at(chrono::Duration::minutes(60))).is_ok());
        assert_eq!(parse_expiry(&at(chrono::Duration::minutes(-1))).unwrap_err().status, 400);
        assert_eq!(parse_expiry(&at(chrono::Duration::minutes(MAX_LIFETIME_MINUTES + 5))).unwrap_err().status, 400);
    }

    #[test]
    fn changes_become_created_updated_and_deleted_notifications_once() {
        let mut store = Store::default();
        store.add_mailbox("alice@contoso.test", "Alice", false);
        let subs = Subscriptions::default();
        let folder_id = store.folder_id("alice@contoso.test", None).unwrap();
        lock(&subs.all).insert(
            "s".into(),
            Subscription {
                id: "s".into(),
                resource: "users/alice@contoso.test/contacts".into(),
                change_type: "created,updated,deleted".into(),
                notification_url: "http://127.0.0.1:9/notify".into(),
                lifecycle_url: None,
                client_state: Some("state".into()),
                expiration: Utc::now() + chrono::Duration::minutes(10),
                renewals: 0,
                mailbox: "alice@contoso.test".into(),
                folder_id,
                cursor: store.sequence(),
                known: BTreeSet::new(),
            },
        );
        let c = store.create_contact("alice@contoso.test", None, &json!({"givenName": "A"})).unwrap();
        let id = c["id"].as_str().unwrap().to_owned();
        let kinds = |d: Vec<Delivery>| -> Vec<String> {
            d.iter()
                .flat_map(|d| d.body["value"].as_array().unwrap().clone())
                .map(|n| n["changeType"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(kinds(subs.due(&store, "t")), ["created"]);
        assert!(subs.due(&store, "t").is_empty(), "each change is notified once");
        store.edit_contact("alice@contoso.test", &id, "surname", json!("B")).unwrap();
        let d = subs.due(&store, "t");
        assert_eq!(d[0].body["value"][0]["clientState"], "state");
        assert_eq!(kinds(d), ["updated"]);
        store.delete_contact("alice@contoso.test", None, &id, None).unwrap();
        assert_eq!(kinds(subs.due(&store, "t")), ["deleted"]);
    }
}
