//! A misbehaving EWS server on loopback, for the failures the emulator does not stage: each request
//! is answered by a script (throttling answers, internal errors, oversized or endless bodies,
//! listings that never end, slow streaming bytes, a connection closed without an answer). It
//! records every request it received, when, and how many body bytes it managed to write, so that
//! tests count requests and bytes instead of measuring memory.
//!
//! HTTP/1.1 is written by hand on purpose: a hostile server must be free to send what a correct
//! HTTP library would not (an endless chunked body, a body far beyond its limit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The EWS operation (the first element in the SOAP body), e.g. `FindItem`.
    pub operation: String,
    /// The request head (request line and headers).
    pub head: String,
    /// The request body.
    pub body: String,
    /// When its head had arrived.
    pub at: Instant,
}

/// The parts of a body: each written after its delay.
pub type Parts = Box<dyn Iterator<Item = (Duration, Vec<u8>)> + Send>;

/// How the server answers one request.
pub enum Reply {
    /// An answer. With `content_length` the parts are written as they are (their total may differ
    /// from the declared length: a lie is a test too); without, as HTTP chunks.
    Body { status: u16, headers: Vec<(String, String)>, content_length: Option<u64>, parts: Parts },
    /// Close the connection without answering.
    Close,
}

impl Reply {
    /// A whole document with its `Content-Length`.
    pub fn full(status: u16, body: impl Into<Vec<u8>>) -> Self {
        let body = body.into();
        Reply::Body {
            status,
            headers: vec![],
            content_length: Some(body.len() as u64),
            parts: Box::new(std::iter::once((Duration::ZERO, body))),
        }
    }

    /// A document answered with HTTP 200.
    pub fn ok(body: impl Into<Vec<u8>>) -> Self {
        Self::full(200, body)
    }

    /// This answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Reply::Body { headers, .. } = &mut self {
            headers.push((name.to_owned(), value.to_owned()));
        }
        self
    }

    /// The whole body of an answer (for a finite one), e.g. to validate it.
    pub fn into_body(self) -> Vec<u8> {
        match self {
            Reply::Body { parts, .. } => parts.flat_map(|(_, p)| p).collect(),
            Reply::Close => Vec::new(),
        }
    }

    /// A chunked body made of `parts`.
    pub fn chunked(status: u16, parts: Parts) -> Self {
        Reply::Body { status, headers: vec![], content_length: None, parts }
    }
}

type Script = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

struct State {
    seen: Mutex<Vec<Seen>>,
    served: AtomicU64,
    script: Box<Script>,
}

/// A running hostile server (it stops with the test's runtime).
pub struct HostileServer {
    /// The EWS URL to give a client.
    pub url: String,
    state: Arc<State>,
}

impl HostileServer {
    /// Starts a server answering the `n`-th request (from 0) it receives with `script(request, n)`.
    pub async fn start(script: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/EWS/Exchange.asmx", listener.local_addr().expect("address"));
        let state =
            Arc::new(State { seen: Mutex::new(Vec::new()), served: AtomicU64::new(0), script: Box::new(script) });
        let accepting = Arc::clone(&state);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, Arc::clone(&accepting)));
            }
        });
        HostileServer { url, state }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// How many requests of `operation` arrived.
    pub fn count(&self, operation: &str) -> usize {
        self.state.seen.lock().unwrap().iter().filter(|s| s.operation == operation).count()
    }

    /// How many body bytes the server wrote to its sockets (what a client may have read, plus
    /// what the kernel's socket buffers held).
    pub fn served(&self) -> u64 {
        self.state.served.load(Ordering::SeqCst)
    }
}

async fn serve(mut socket: TcpStream, state: Arc<State>) {
    // Head and body go out in separate writes: without this, Nagle's algorithm holds the body
    // until the client's delayed acknowledgement, 40 ms per answer.
    let _ = socket.set_nodelay(true);
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 16 * 1024];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let at = Instant::now();
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
        buf.drain(..head_end + length);
        let seen = Seen { operation: operation_of(&body), head, body, at };
        let reply = {
            let mut all = state.seen.lock().unwrap();
            all.push(seen.clone());
            let n = all.len() - 1;
            drop(all);
            (state.script)(&seen, n)
        };
        let Reply::Body { status, headers, content_length, parts } = reply else { return };
        let mut out = format!("HTTP/1.1 {status} Scripted\r\nContent-Type: text/xml; charset=utf-8\r\n");
        for (name, value) in &headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        match content_length {
            Some(n) => out.push_str(&format!("Content-Length: {n}\r\n\r\n")),
            None => out.push_str("Transfer-Encoding: chunked\r\n\r\n"),
        }
        if socket.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        for (delay, part) in parts {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let written = match content_length {
                Some(_) => socket.write_all(&part).await,
                None if part.is_empty() => Ok(()),
                None => {
                    let mut framed = format!("{:x}\r\n", part.len()).into_bytes();
                    framed.extend_from_slice(&part);
                    framed.extend_from_slice(b"\r\n");
                    socket.write_all(&framed).await
                }
            };
            if written.is_err() {
                return;
            }
            state.served.fetch_add(part.len() as u64, Ordering::SeqCst);
        }
        if content_length.is_none() && socket.write_all(b"0\r\n\r\n").await.is_err() {
            return;
        }
    }
}

/// The local name of the first element inside the SOAP body.
fn operation_of(body: &str) -> String {
    let Some(at) = body.find(":Body>") else { return String::new() };
    let rest = &body[at + 6..];
    let Some(open) = rest.find('<') else { return String::new() };
    let name: String = rest[open + 1..].chars().take_while(|c| !matches!(c, ' ' | '>' | '/')).collect();
    name.rsplit(':').next().unwrap_or_default().to_owned()
}

// ----- documents, as Exchange 2016 writes them -----

const NS: &str = r#"xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types""#;

/// A response envelope around an operation's response element.
pub fn envelope(body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" xmlns="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body>{body}</s:Body></s:Envelope>"#
    )
}

/// `messages` response messages of `operation`, in its response element.
pub fn response(operation: &str, messages: &[String]) -> String {
    let inner: String = messages.concat();
    envelope(&format!(
        "<m:{operation}Response {NS}><m:ResponseMessages>{inner}</m:ResponseMessages></m:{operation}Response>"
    ))
}

/// A successful response message with `content` after its response code.
pub fn success(operation: &str, content: &str) -> String {
    format!(
        r#"<m:{operation}ResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>{content}</m:{operation}ResponseMessage>"#
    )
}

/// A failed response message; `values` go into its `MessageXml` as `t:Value` elements.
pub fn failure(operation: &str, code: &str, text: &str, values: &[(&str, &str)]) -> String {
    let xml = if values.is_empty() {
        String::new()
    } else {
        let v: String = values.iter().map(|(n, v)| format!(r#"<t:Value Name="{n}">{v}</t:Value>"#)).collect();
        format!("<m:MessageXml>{v}</m:MessageXml>")
    };
    format!(
        r#"<m:{operation}ResponseMessage ResponseClass="Error"><m:MessageText>{text}</m:MessageText><m:ResponseCode>{code}</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>{xml}</m:{operation}ResponseMessage>"#
    )
}

/// ErrorServerBusy as a SOAP fault (HTTP 500) with BackOffMilliseconds.
pub fn busy_fault(back_off_ms: u64) -> Reply {
    Reply::full(
        500,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode><faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring><detail><e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode><e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message><t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><t:Value Name="BackOffMilliseconds">{back_off_ms}</t:Value></t:MessageXml></detail></s:Fault></s:Body></s:Envelope>"#
        ),
    )
}

/// ErrorServerBusy in the (single) response message of `operation`, with BackOffMilliseconds.
pub fn busy_message(operation: &str, back_off_ms: u64) -> Reply {
    let ms = back_off_ms.to_string();
    Reply::ok(response(
        operation,
        &[failure(
            operation,
            "ErrorServerBusy",
            "The server cannot service this request right now. Try again later.",
            &[("BackOffMilliseconds", &ms)],
        )],
    ))
}

/// ErrorInternalServerError for each of `n` entries, naming `inner` as its inner error.
pub fn internal_errors(operation: &str, n: usize, inner: Option<(&str, &str)>) -> Reply {
    let values: Vec<(&str, &str)> = match inner {
        Some((code, text)) => vec![
            ("InnerErrorMessageText", text),
            ("InnerErrorResponseCode", code),
            ("InnerErrorDescriptiveLinkKey", "0"),
        ],
        None => vec![],
    };
    let m = failure(
        operation,
        "ErrorInternalServerError",
        "An internal server error occurred. The operation failed.",
        &values,
    );
    Reply::ok(response(operation, &vec![m; n]))
}

/// A contact as FindItem lists it (id and change key).
pub fn contact(n: usize) -> String {
    format!(r#"<t:Contact><t:ItemId Id="AAMkItem{n:07}" ChangeKey="EQAAAB{n:07}"/></t:Contact>"#)
}

/// A FindItem page with `items` contacts numbered from `first`.
pub fn find_item_page(first: usize, items: usize, next_offset: usize, includes_last: bool) -> Reply {
    let list: String = (first..first + items).map(contact).collect();
    let root = format!(
        r#"<m:RootFolder IndexedPagingOffset="{next_offset}" TotalItemsInView="{total}" IncludesLastItemInRange="{includes_last}"><t:Items>{list}</t:Items></m:RootFolder>"#,
        total = first + items + usize::from(!includes_last),
    );
    Reply::ok(response("FindItem", &[success("FindItem", &root)]))
}

/// A SyncFolderItems page with `changes` created contacts.
pub fn sync_page(state: &str, includes_last: bool, first: usize, changes: usize) -> Reply {
    let list: String = (first..first + changes).map(|n| format!("<t:Create>{}</t:Create>", contact(n))).collect();
    let content = format!(
        "<m:SyncState>{state}</m:SyncState><m:IncludesLastItemInRange>{includes_last}</m:IncludesLastItemInRange><m:Changes>{list}</m:Changes>"
    );
    Reply::ok(response("SyncFolderItems", &[success("SyncFolderItems", &content)]))
}

/// GetFolder of the Contacts folder.
pub fn contacts_folder() -> Reply {
    Reply::ok(response(
        "GetFolder",
        &[success(
            "GetFolder",
            r#"<m:Folders><t:ContactsFolder><t:FolderId Id="AAMkFolder" ChangeKey="AQAAAA"/><t:DisplayName>Contacts</t:DisplayName><t:TotalCount>0</t:TotalCount></t:ContactsFolder></m:Folders>"#,
        )],
    ))
}

/// DeleteItem succeeding for `n` entries.
pub fn deleted(n: usize) -> Reply {
    Reply::ok(response("DeleteItem", &vec![success("DeleteItem", ""); n]))
}

/// A streaming subscription.
pub fn subscribed(id: &str) -> Reply {
    Reply::ok(response("Subscribe", &[success("Subscribe", &format!("<m:SubscriptionId>{id}</m:SubscriptionId>"))]))
}

/// One GetStreamingEvents envelope with a connection status (`OK`: a heartbeat; `Closed`).
pub fn streaming_status(status: &str) -> Vec<u8> {
    response(
        "GetStreamingEvents",
        &[success("GetStreamingEvents", &format!("<m:ConnectionStatus>{status}</m:ConnectionStatus>"))],
    )
    .into_bytes()
}

/// The number of items of a request's `DeleteItem` / `GetItem` batch.
pub fn batch_len(seen: &Seen) -> usize {
    seen.body.matches("<t:ItemId ").count()
}
