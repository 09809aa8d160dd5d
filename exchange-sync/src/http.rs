//! The service's HTTP endpoint: a status page, a JSON API, Prometheus `/metrics` and `/healthz`.
//!
//! | path | what |
//! |---|---|
//! | `GET /` | the status page: groups, members, last sync, errors, conflicts, guard stops (server-rendered HTML, readable on a phone) |
//! | `GET /api/status` | the same as JSON (what `exchange-sync status --json` prints, as one array) |
//! | `GET /api/conflicts` | the conflict log as JSON |
//! | `GET /metrics` | Prometheus text format (see [`crate::metrics`]) |
//! | `GET /healthz` | `200 ok` while the service runs and its state can be read, `503` otherwise |
//! | `POST /api/groups/{group}/confirm` | confirms a guard stop (admin token) |
//! | `POST /api/groups/{group}/resync` | asks for a resync, of one member with `member=...` (admin token) |
//! | `POST {path of service.graph_notification_url}` | Microsoft Graph's change notifications and their validation handshake (checked by `clientState`, not by the admin token) |
//!
//! It listens where `[service.http] listen` says, loopback by default. It is read-only unless an
//! admin token is configured (`admin_token_env` / `admin_token_file`); the two `POST`s then need
//! it, as `Authorization: Bearer <token>` or a form field `token` (the status page's forms).
//! Nothing it serves holds a secret: statuses, reports and the conflict log never do, and the
//! configuration is not served.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

use crate::config::HUB_MEMBER_ID;
use crate::service::SyncService;
use crate::status::GroupStatus;
use exchange_sync_core::state::AdminRequest;

/// The largest request body read (the status page's forms are a few bytes).
const MAX_BODY: usize = 16 * 1024;
/// The largest notification collection read (Graph batches notifications; a few KiB each).
const MAX_NOTIFICATION_BODY: usize = 4 * 1024 * 1024;
/// How long a client may take to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// A running HTTP endpoint.
pub struct HttpServer {
    /// Where it listens (with the port the system chose, for port 0).
    pub address: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Stops listening.
    pub fn stop(self) {
        self.task.abort();
    }
}

struct State {
    service: SyncService,
    token: Option<String>,
}

/// Starts serving `service` on `listen`; `token` allows the admin actions.
pub async fn serve(service: SyncService, listen: SocketAddr, token: Option<String>) -> std::io::Result<HttpServer> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let address = listener.local_addr()?;
    let state = Arc::new(State { service, token: token.filter(|t| !t.is_empty()) });
    let task = tokio::spawn(async move {
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("status page: cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let state = Arc::clone(&state);
                    async move { Ok::<_, Infallible>(handle(&state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                if let Err(e) = conn.await {
                    tracing::debug!("status page connection ended: {e}");
                }
            });
        }
    });
    Ok(HttpServer { address, task })
}

fn response(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    if let Ok(v) = "no-store".parse() {
        r.headers_mut().insert(hyper::header::CACHE_CONTROL, v);
    }
    r
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => response(StatusCode::OK, "application/json", body),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("cannot write JSON: {e}")),
    }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    response(status, "text/plain; charset=utf-8", body.to_owned())
}

/// Compares two tokens in time that does not depend on where they differ.
fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    if let Some(notifications) = state.service.change_notifications()
        && req.method() == Method::POST
        && path == notifications.settings().path()
    {
        return graph_notification(&notifications, req, &query).await;
    }
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => match state.service.store().groups().await {
            Ok(_) if !state.service.is_shutting_down() => text(StatusCode::OK, "ok\n"),
            Ok(_) => text(StatusCode::SERVICE_UNAVAILABLE, "stopping\n"),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("state: {e}\n")),
        },
        (&Method::GET, "/metrics") => {
            let mut text = state.service.metrics().render();
            if let Some(n) = state.service.change_notifications() {
                text.push_str(&crate::metrics::render_graph_notifications(&n));
            }
            response(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", text)
        }
        (&Method::GET, "/api/status") => match state.service.status().await {
            Ok(groups) => json(&groups),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("state: {e}\n")),
        },
        (&Method::GET, "/api/conflicts") => match state.service.conflicts(None).await {
            Ok(log) => json(&log),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("state: {e}\n")),
        },
        (&Method::GET, "/") => match state.service.status().await {
            Ok(groups) => {
                let message =
                    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "done").map(|(_, v)| v.into_owned());
                let conflicts = state.service.conflicts(None).await.unwrap_or_default();
                let page = page(&groups, &conflicts, state.token.is_some(), message.as_deref());
                response(StatusCode::OK, "text/html; charset=utf-8", page)
            }
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &format!("state: {e}\n")),
        },
        (&Method::POST, p) if p.starts_with("/api/groups/") => admin(state, req, p.to_owned()).await,
        (_, "/" | "/healthz" | "/metrics" | "/api/status" | "/api/conflicts") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// A post of Microsoft Graph to the notification URL: the validation handshake or a collection
/// of change or lifecycle notifications (see [`exchange_sync_graph::subscription`]).
async fn graph_notification(
    notifications: &exchange_sync_graph::ChangeNotifications,
    req: Request<Incoming>,
    query: &str,
) -> Response<Full<Bytes>> {
    let body = match Limited::new(req.into_body(), MAX_NOTIFICATION_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
    };
    let reply = notifications.receive(query, &body);
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response(status, reply.content_type, reply.body)
}

/// `POST /api/groups/{group}/confirm|resync`: only with the admin token.
async fn admin(state: &State, req: Request<Incoming>, path: String) -> Response<Full<Bytes>> {
    let Some(expected) = &state.token else {
        return text(
            StatusCode::FORBIDDEN,
            "the status page is read-only: set service.http.admin_token_env (or admin_token_file) to allow confirming \
             and resyncing here\n",
        );
    };
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let from_page = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return text(StatusCode::PAYLOAD_TOO_LARGE, "request too large\n"),
    };
    let form: Vec<(String, String)> =
        form_urlencoded::parse(&body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    // A form posted by the status page is answered by the page again; an API call by JSON.
    let from_page = from_page && bearer.is_none();
    let given = bearer.or_else(|| field("token"));
    if !given.is_some_and(|t| same_token(&t, expected)) {
        return text(StatusCode::UNAUTHORIZED, "the admin token is missing or wrong\n");
    }
    let rest = path.trim_start_matches("/api/groups/");
    let Some((group, action)) = rest.rsplit_once('/') else { return text(StatusCode::NOT_FOUND, "not found\n") };
    let group: String =
        form_urlencoded::parse(format!("g={group}").as_bytes()).next().map(|(_, v)| v.into_owned()).unwrap_or_default();
    let request = match action {
        "confirm" => AdminRequest::ConfirmDeletions,
        "resync" => AdminRequest::Resync {
            member: field("member")
                .filter(|m| !m.trim().is_empty())
                .map(|m| exchange_sync_core::MemberId::new(m.trim().to_owned())),
        },
        _ => return text(StatusCode::NOT_FOUND, "not found\n"),
    };
    let what = match &request {
        AdminRequest::ConfirmDeletions => format!("confirmation of the deletions in group {group}"),
        AdminRequest::Resync { member: Some(m) } => format!("resync of {m} in group {group}"),
        AdminRequest::Resync { member: None } => format!("resync of group {group}"),
    };
    match state.service.post_request(&group, request).await {
        Ok(id) => {
            tracing::info!(request = id, "admin request from the status page: {what}");
            if from_page {
                let done: String = form_urlencoded::Serializer::new(String::new())
                    .append_pair("done", &format!("posted the {what}; the service carries it out within seconds"))
                    .finish();
                let mut r = response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "posted\n");
                if let Ok(v) = format!("/?{done}").parse() {
                    r.headers_mut().insert(hyper::header::LOCATION, v);
                }
                r
            } else {
                json(&serde_json::json!({ "request": id, "posted": what }))
            }
        }
        Err(e) => text(StatusCode::BAD_REQUEST, &format!("{e}\n")),
    }
}

/// Escapes text for HTML.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn when(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map_or_else(|| "never".to_owned(), |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
}

const STYLE: &str = "
:root{color-scheme:light dark;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;padding:12px;max-width:980px;margin:auto}
h1{font-size:1.3em;margin:.2em 0 .6em}
h2{font-size:1.1em;margin:0;display:flex;flex-wrap:wrap;gap:.5em;align-items:center}
section.group{border:1px solid var(--line);border-radius:8px;padding:12px;margin:0 0 14px}
.badge{font-size:.8em;padding:2px 8px;border-radius:999px;border:1px solid currentColor;white-space:nowrap}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}.muted{color:var(--muted);font-size:.9em}
table{border-collapse:collapse;width:100%;margin:.6em 0}
td,th{text-align:left;padding:6px 4px;border-top:1px solid var(--line);vertical-align:top;overflow-wrap:anywhere}
th{font-size:.85em;color:var(--muted);font-weight:600}
.alert{border-left:4px solid var(--bad);padding:6px 10px;margin:.6em 0;background:rgba(207,34,46,.07)}
.hint{color:var(--muted)}
ul{margin:.3em 0;padding-left:1.2em}
form{display:inline-flex;gap:6px;flex-wrap:wrap;margin:.3em 0}
input,button{font:inherit;padding:4px 8px}
.notice{border:1px solid var(--ok);padding:6px 10px;border-radius:6px;margin-bottom:12px}
@media (max-width:640px){
 table.members thead{display:none}
 table.members tr{display:block;border-top:1px solid var(--line);padding:6px 0}
 table.members td{display:block;border:0;padding:1px 0}
 table.members td[data-l]::before{content:attr(data-l) ': ';color:var(--muted);font-size:.85em}
}
";

/// The status page.
fn page(
    groups: &[GroupStatus],
    conflicts: &[crate::conflict_log::ConflictEntry],
    admin: bool,
    message: Option<&str>,
) -> String {
    let mut h = String::new();
    h.push_str("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    h.push_str("<meta http-equiv=\"refresh\" content=\"15\">");
    h.push_str("<title>exchange-sync status</title><style>");
    h.push_str(STYLE);
    h.push_str("</style></head><body><h1>exchange-sync</h1>");
    h.push_str(&format!(
        "<p class=\"muted\">{} group{} &middot; shown {} &middot; refreshes every 15 s &middot; <a href=\"/api/status\">JSON</a> &middot; <a href=\"/metrics\">metrics</a>{}</p>",
        groups.len(),
        if groups.len() == 1 { "" } else { "s" },
        esc(&chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        if admin { "" } else { " &middot; read-only" }
    ));
    if let Some(m) = message {
        h.push_str(&format!("<div class=\"notice\">{}</div>", esc(m)));
    }
    for g in groups {
        let (class, state) = if g.stopped_by_mass_delete_guard {
            ("bad", "stopped by the mass-delete guard".to_owned())
        } else if !g.last_errors.is_empty() {
            ("bad", "errors".to_owned())
        } else if g.members.iter().any(|m| m.last_error.is_some()) {
            ("warn", "attention".to_owned())
        } else if g.last_outcome.is_none() {
            ("muted", "no pass yet".to_owned())
        } else {
            ("ok", "in sync".to_owned())
        };
        h.push_str(&format!(
            "<section class=\"group\" id=\"group-{}\"><h2>{} <span class=\"badge {class}\">{}</span></h2>",
            esc(&g.group),
            esc(&g.group),
            esc(&state)
        ));
        h.push_str(&format!(
            "<p class=\"muted\">last pass {} &middot; {} conflicts recorded{}</p>",
            esc(&when(g.last_pass)),
            g.conflicts,
            if g.pending_requests.is_empty() {
                String::new()
            } else {
                format!(" &middot; pending: {}", esc(&g.pending_requests.join("; ")))
            }
        ));
        if let Some(guard) = &g.guard {
            h.push_str("<div class=\"alert\"><strong>Mass-delete guard</strong>: ");
            h.push_str(&esc(&guard.summary()));
            if guard.deletions_total > 0 {
                h.push_str(&format!(
                    "<br>Confirming deletes {} copies ({}).",
                    guard.deletions_total,
                    esc(&guard.per_folder())
                ));
                let items = guard.by_item();
                h.push_str(&format!("<details><summary>the {} items</summary><ul>", items.len()));
                for (item, _) in &items {
                    h.push_str(&format!("<li>{}</li>", esc(item)));
                }
                h.push_str("</ul></details>");
            }
            h.push_str(&format!("<span class=\"hint\">Confirm: {}</span>", esc(&guard.confirm)));
            h.push_str("</div>");
        } else if g.stopped_by_mass_delete_guard {
            h.push_str(
                "<div class=\"alert\">A folder is held: every copy the group knew there vanished at once.</div>",
            );
        }
        for e in &g.last_errors {
            if g.guard.is_some() && e.kind == "mass_delete" {
                continue; // said by the guard's box above
            }
            let who = e.member.as_ref().map(|m| format!("{m}: ")).unwrap_or_default();
            h.push_str(&format!("<div class=\"alert\">{}{}", esc(&who), esc(&e.message)));
            if let Some(hint) = &e.hint {
                h.push_str(&format!("<br><span class=\"hint\">hint: {}</span>", esc(hint)));
            }
            h.push_str("</div>");
        }
        h.push_str("<table class=\"members\"><thead><tr><th>member</th><th>folder</th><th>copies</th><th>last sync</th><th>state</th></tr></thead><tbody>");
        for m in &g.members {
            let who = if m.member == HUB_MEMBER_ID { "hub".to_owned() } else { m.member.clone() };
            let state = match &m.last_error {
                Some(e) => format!("<span class=\"bad\">{}</span>", esc(e)),
                None if !m.initialized && m.member != HUB_MEMBER_ID => {
                    "<span class=\"warn\">initial sync pending</span>".to_owned()
                }
                None => format!("<span class=\"ok\">{}</span>", esc(&m.condition)),
            };
            h.push_str(&format!(
                "<tr><td data-l=\"member\"><strong>{}</strong><br><span class=\"muted\">{} &middot; {}</span></td><td data-l=\"folder\">{}</td><td data-l=\"copies\">{}</td><td data-l=\"last sync\">{}</td><td data-l=\"state\">{state}</td></tr>",
                esc(&who),
                esc(&m.direction.replace('_', "-")),
                esc(&m.source),
                esc(&m.folder),
                m.copies,
                esc(&when(m.last_sync)),
            ));
        }
        h.push_str("</tbody></table>");
        let mine: Vec<_> = conflicts.iter().filter(|c| c.group == g.group).rev().take(5).collect();
        if !mine.is_empty() {
            h.push_str("<details><summary>latest conflicts</summary><ul>");
            for c in mine {
                h.push_str(&format!("<li>{}</li>", esc(&c.to_string())));
            }
            h.push_str("</ul></details>");
        }
        if admin {
            let action = |what: &str| {
                format!(
                    "/api/groups/{}/{what}",
                    esc(&form_urlencoded::byte_serialize(g.group.as_bytes()).collect::<String>())
                )
            };
            if g.stopped_by_mass_delete_guard {
                h.push_str(&format!(
                    "<form method=\"post\" action=\"{}\"><input type=\"password\" name=\"token\" placeholder=\"admin token\" required><button>Confirm the deletions</button></form>",
                    action("confirm")
                ));
            }
            h.push_str(&format!(
                "<form method=\"post\" action=\"{}\"><input type=\"password\" name=\"token\" placeholder=\"admin token\" required><input name=\"member\" placeholder=\"member (empty: all)\"><button>Resync</button></form>",
                action("resync")
            ));
        }
        h.push_str("</section>");
    }
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(same_token("s3cret", "s3cret"));
        assert!(!same_token("s3cret", "s3cre"));
        assert!(!same_token("s3cret", "s3creT"));
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
