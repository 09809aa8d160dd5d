//! Streaming notifications: GetStreamingEvents answers with one long chunked HTTP response made of
//! complete SOAP envelopes back to back (notifications and heartbeats). [`EnvelopeSplitter`] cuts the
//! byte stream into envelopes as they complete; [`NotificationStream`] parses each and watches for
//! heartbeats.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::error::{ErrorContext, EwsError, Result};
use crate::operation::notifications::{StreamingBatch, parse_streaming_batch};
use crate::soap::parse_envelope;
use crate::transport::transport_error;
use crate::xml::ParseLimits;

/// Cuts a byte stream into complete `Envelope` documents.
///
/// An envelope ends at its `</…:Envelope>` end tag (envelopes do not nest, and `<` cannot appear
/// unescaped in character data), so no full parse is needed to find the boundaries; each document is
/// then parsed with the usual hardened parser.
///
/// Linear in the bytes received: each byte is examined once (the scan resumes where the last push
/// stopped, also inside an end tag whose `>` has not arrived) and copied at most twice (into the
/// buffer, and out with its document). The document being received is bounded by `max_bytes`.
#[derive(Debug)]
pub struct EnvelopeSplitter {
    /// The document being received (and, during a push, the documents it completes).
    buffer: Vec<u8>,
    /// Bytes of `buffer` before this were examined.
    scanned: usize,
    /// The position of an end tag's `</` whose `>` has not been seen yet.
    end_tag: Option<usize>,
    max_bytes: usize,
    /// Bytes examined in all, to check that the scan stays linear.
    examined: u64,
}

impl EnvelopeSplitter {
    /// A splitter refusing documents larger than `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self { buffer: Vec::new(), scanned: 0, end_tag: None, max_bytes, examined: 0 }
    }

    /// Adds bytes and returns every envelope completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut documents = Vec::new();
        // Where the next document starts; the bytes before it were handed out.
        let mut doc_start = 0;
        let mut at = self.scanned;
        let len = self.buffer.len();
        while at < len {
            match self.end_tag {
                None => {
                    let Some(rel) = self.buffer[at..].iter().position(|b| *b == b'<') else {
                        self.examined += (len - at) as u64;
                        at = len;
                        break;
                    };
                    self.examined += rel as u64 + 1;
                    let lt = at + rel;
                    match self.buffer.get(lt + 1) {
                        // A `<` at the very end: look at it again with the next bytes.
                        None => {
                            at = lt;
                            break;
                        }
                        Some(b'/') => {
                            self.end_tag = Some(lt);
                            at = lt + 2;
                        }
                        Some(_) => at = lt + 1,
                    }
                }
                Some(start) => {
                    let Some(rel) = self.buffer[at..].iter().position(|b| *b == b'>') else {
                        self.examined += (len - at) as u64;
                        at = len;
                        break;
                    };
                    self.examined += rel as u64 + 1;
                    let gt = at + rel;
                    self.end_tag = None;
                    at = gt + 1;
                    let name = trim(&self.buffer[start + 2..gt]);
                    let local = match name.iter().rposition(|b| *b == b':') {
                        Some(i) => &name[i + 1..],
                        None => name,
                    };
                    if local == b"Envelope" {
                        documents.push(self.buffer[doc_start..at].to_vec());
                        doc_start = at;
                    }
                }
            }
        }
        if doc_start > 0 {
            // Only the bytes of this push after its last document move.
            self.buffer.drain(..doc_start);
            at -= doc_start;
            self.end_tag = self.end_tag.map(|t| t - doc_start);
        }
        self.scanned = at;
        if self.buffer.len() > self.max_bytes {
            return Err(format!("streaming document larger than {} bytes", self.max_bytes));
        }
        Ok(documents)
    }

    /// Whether non-whitespace bytes are waiting for the rest of their envelope.
    pub fn has_partial(&self) -> bool {
        self.buffer.iter().any(|b| !b.is_ascii_whitespace())
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end]
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct State {
    body: ByteStream,
    splitter: EnvelopeSplitter,
    queue: VecDeque<Result<StreamingBatch>>,
    heartbeat: Duration,
    limits: ParseLimits,
    done: bool,
}

fn context() -> ErrorContext {
    ErrorContext::operation("GetStreamingEvents")
}

impl State {
    fn accept(&mut self, chunk: &[u8]) {
        match self.splitter.push(chunk) {
            Ok(docs) => {
                for doc in docs {
                    let batch = parse_envelope("GetStreamingEvents", &doc, self.limits)
                        .and_then(|r| parse_streaming_batch(&r.body));
                    if batch.is_err() {
                        self.done = true;
                    }
                    self.queue.push_back(batch);
                }
            }
            Err(reason) => {
                self.done = true;
                self.queue.push_back(Err(EwsError::Protocol { reason, context: Box::new(context()) }));
            }
        }
    }
}

/// The envelopes of one GetStreamingEvents connection, parsed as they arrive.
///
/// Ends when the server closes the connection (after a `ConnectionStatus` `Closed`) or after an error
/// (including [`EwsError::StreamStalled`] when no heartbeat came in time); the caller reconnects.
pub struct NotificationStream {
    inner: Pin<Box<dyn Stream<Item = Result<StreamingBatch>> + Send>>,
}

impl std::fmt::Debug for NotificationStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotificationStream")
    }
}

impl NotificationStream {
    pub(crate) fn new(response: reqwest::Response, heartbeat: Duration, limits: ParseLimits) -> Self {
        let state = State {
            body: Box::pin(response.bytes_stream()),
            splitter: EnvelopeSplitter::new(limits.max_bytes),
            queue: VecDeque::new(),
            heartbeat,
            limits,
            done: false,
        };
        let inner = futures::stream::unfold(state, |mut s| async move {
            loop {
                if let Some(item) = s.queue.pop_front() {
                    return Some((item, s));
                }
                if s.done {
                    return None;
                }
                match tokio::time::timeout(s.heartbeat, s.body.next()).await {
                    Err(_) => {
                        s.done = true;
                        return Some((Err(EwsError::StreamStalled { context: Box::new(context()) }), s));
                    }
                    Ok(None) => {
                        s.done = true;
                        if s.splitter.has_partial() {
                            let reason = "connection ended inside an envelope".to_owned();
                            return Some((Err(EwsError::Protocol { reason, context: Box::new(context()) }), s));
                        }
                        return None;
                    }
                    Ok(Some(Err(e))) => {
                        s.done = true;
                        return Some((Err(transport_error(e, context())), s));
                    }
                    Ok(Some(Ok(chunk))) => s.accept(&chunk),
                }
            }
        });
        Self { inner: Box::pin(inner) }
    }
}

impl Stream for NotificationStream {
    type Item = Result<StreamingBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEARTBEAT_2016: &str = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><soap11:Header xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/"><ServerVersionInfo xmlns="http://schemas.microsoft.com/exchange/services/2006/types" MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507" MinorBuildNumber="6" Version="V2017_07_11"/></soap11:Header><soap11:Body xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/"><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:ConnectionStatus>OK</m:ConnectionStatus></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></soap11:Body></Envelope>"#;

    const EVENTS_2016: &str = r#"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><soap11:Body xmlns:soap11="http://schemas.xmlsoap.org/soap/envelope/"><m:GetStreamingEventsResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages><m:GetStreamingEventsResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Notifications><m:Notification><t:SubscriptionId>JwBkYjVw</t:SubscriptionId><t:CreatedEvent><t:Watermark>AQAAAA==</t:Watermark><t:TimeStamp>2016-04-05T18:20:22Z</t:TimeStamp><t:ItemId Id="AAMkAD" ChangeKey="CQAAAA"/><t:ParentFolderId Id="AAMkAE" ChangeKey="AQAAAA"/></t:CreatedEvent><t:FutureEvent><t:Watermark>x</t:Watermark></t:FutureEvent></m:Notification></m:Notifications></m:GetStreamingEventsResponseMessage></m:ResponseMessages></m:GetStreamingEventsResponse></soap11:Body></Envelope>"#;

    #[test]
    fn splits_envelopes_across_arbitrary_chunks() {
        let body = format!("{HEARTBEAT_2016}\r\n{EVENTS_2016}{HEARTBEAT_2016}");
        for chunk_size in [1, 7, 64, 4096] {
            let mut s = EnvelopeSplitter::new(1 << 20);
            let mut docs = Vec::new();
            for chunk in body.as_bytes().chunks(chunk_size) {
                docs.extend(s.push(chunk).unwrap());
            }
            assert_eq!(docs.len(), 3, "chunk size {chunk_size}");
            assert!(!s.has_partial());
            let batch = parse_envelope("GetStreamingEvents", &docs[1], ParseLimits::default())
                .and_then(|r| parse_streaming_batch(&r.body))
                .unwrap();
            assert_eq!(batch.notifications.len(), 1);
            let n = &batch.notifications[0];
            assert_eq!(n.subscription_id, "JwBkYjVw");
            assert_eq!(n.events.len(), 1, "unknown event kinds are skipped");
            assert_eq!(n.events[0].item_id.as_ref().map(|i| i.id.as_str()), Some("AAMkAD"));
        }
    }

    #[test]
    fn bounded_buffer() {
        let mut s = EnvelopeSplitter::new(100);
        assert!(s.push(&[b'a'; 200]).is_err());
    }

    /// `</` followed by bytes that never close the tag, in small pieces: each byte is examined
    /// once, not once per piece (that made a hostile stream cost quadratic CPU).
    #[test]
    fn the_scan_is_linear_in_the_bytes_received() {
        let mut s = EnvelopeSplitter::new(64 << 20);
        let mut pushed = 0u64;
        s.push(b"<Envelope><Body></").unwrap();
        pushed += 18;
        let piece = [b'x'; 1024];
        for _ in 0..16 * 1024 {
            assert!(s.push(&piece).unwrap().is_empty());
            pushed += piece.len() as u64;
        }
        assert!(s.examined <= pushed, "examined {} bytes for {pushed} received", s.examined);
        // The same with `<` without `/`, and with many envelopes per piece.
        let mut s = EnvelopeSplitter::new(1 << 20);
        let many = HEARTBEAT_2016.repeat(50);
        let mut docs = 0;
        for _ in 0..100 {
            docs += s.push(many.as_bytes()).unwrap().len();
        }
        assert_eq!(docs, 5000);
        assert!(s.examined <= 100 * many.len() as u64, "{}", s.examined);
        assert!(!s.has_partial());
    }

    #[test]
    fn an_end_tag_split_anywhere_is_found() {
        let body = format!("{EVENTS_2016} \r\n{HEARTBEAT_2016}");
        let bytes = body.as_bytes();
        for cut in 1..bytes.len() {
            let mut s = EnvelopeSplitter::new(1 << 20);
            let mut docs = s.push(&bytes[..cut]).unwrap();
            docs.extend(s.push(&bytes[cut..]).unwrap());
            assert_eq!(docs.len(), 2, "cut at {cut}");
            assert_eq!(docs[0], EVENTS_2016.as_bytes(), "cut at {cut}");
            assert!(!s.has_partial(), "cut at {cut}");
        }
    }

    #[test]
    fn the_document_bound_counts_only_the_document_being_received() {
        // Complete envelopes handed out do not count against the bound, however many in one push.
        let mut s = EnvelopeSplitter::new(HEARTBEAT_2016.len() + 10);
        let docs = s.push(HEARTBEAT_2016.repeat(20).as_bytes()).unwrap();
        assert_eq!(docs.len(), 20);
        // A document that never ends is refused once it passes the bound.
        let mut s = EnvelopeSplitter::new(4096);
        s.push(b"<Envelope></").unwrap();
        let mut refused = false;
        for _ in 0..8 {
            if s.push(&[b'x'; 1024]).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }
}
