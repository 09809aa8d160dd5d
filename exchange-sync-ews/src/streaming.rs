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
/// then parsed with the usual hardened parser. The buffer is bounded.
#[derive(Debug)]
pub struct EnvelopeSplitter {
    buffer: Vec<u8>,
    scan_from: usize,
    max_bytes: usize,
}

impl EnvelopeSplitter {
    /// A splitter refusing documents larger than `max_bytes`.
    pub fn new(max_bytes: usize) -> Self {
        Self { buffer: Vec::new(), scan_from: 0, max_bytes }
    }

    /// Adds bytes and returns every envelope completed by them.
    pub fn push(&mut self, chunk: &[u8]) -> std::result::Result<Vec<Vec<u8>>, String> {
        self.buffer.extend_from_slice(chunk);
        let mut documents = Vec::new();
        loop {
            let Some(rel) = find(&self.buffer[self.scan_from..], b"</") else {
                self.scan_from = self.buffer.len().saturating_sub(1);
                break;
            };
            let start = self.scan_from + rel;
            let Some(gt_rel) = self.buffer[start..].iter().position(|b| *b == b'>') else {
                self.scan_from = start;
                break;
            };
            let gt = start + gt_rel;
            let name = &self.buffer[start + 2..gt];
            let name = trim(name);
            let local = match name.iter().rposition(|b| *b == b':') {
                Some(i) => &name[i + 1..],
                None => name,
            };
            if local == b"Envelope" {
                let rest = self.buffer.split_off(gt + 1);
                documents.push(std::mem::replace(&mut self.buffer, rest));
                self.scan_from = 0;
            } else {
                self.scan_from = gt + 1;
            }
        }
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

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
}
