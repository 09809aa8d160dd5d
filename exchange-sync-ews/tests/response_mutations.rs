//! A deterministic, always-on cousin of the fuzz target: every fixture, mutated many ways (bytes
//! flipped, cut, duplicated, nested deeply), goes through the parsers. Nothing may panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;

use exchange_sync_ews::ParseLimits;
use exchange_sync_ews::operation::{directory, folders, items, notifications, sync};
use exchange_sync_ews::soap::parse_envelope;
use exchange_sync_ews::streaming::EnvelopeSplitter;

/// xorshift64: reproducible pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn exercise(data: &[u8]) {
    let limits = ParseLimits { max_bytes: 1 << 20, max_depth: 64 };
    if let Ok(r) = parse_envelope("mutation", data, limits) {
        let b = &r.body;
        if let Ok(list) = items::parse_get_item(b.clone()) {
            for item in list.into_iter().flatten() {
                let _ = exchange_sync_ews::mapping::to_item(&item);
            }
        }
        let _ = items::parse_find_item(b.clone());
        let _ = items::parse_create_item(b.clone());
        let _ = folders::parse_get_folder(b);
        let _ = sync::parse_sync_folder_items(b.clone());
        let _ = notifications::parse_get_events(b);
        let _ = notifications::parse_streaming_batch(b);
        let _ = directory::parse_expand_dl(b);
    }
    let mut splitter = EnvelopeSplitter::new(1 << 16);
    for chunk in data.chunks(13) {
        if splitter.push(chunk).is_err() {
            break;
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    const TOKENS: [&[u8]; 8] = [b"<", b">", b"</", b"&amp;", b"&#x0;", b"<!DOCTYPE x>", b"<t:Item>", b"\"'"];
    let mut runs = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let original = std::fs::read(entry.unwrap().path()).unwrap();
        exercise(&original);
        for _ in 0..300 {
            let mut m = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len());
                match rng.below(5) {
                    0 => m[at] = rng.next() as u8,
                    1 => m.truncate(at),
                    2 => {
                        let token = TOKENS[rng.below(TOKENS.len())];
                        m.splice(at..at, token.iter().copied());
                    }
                    3 => {
                        let end = (at + rng.below(200)).min(m.len());
                        let copy = m[at..end].to_vec();
                        m.splice(at..at, copy);
                    }
                    _ => {
                        let deep = "<a>".repeat(200);
                        m.splice(at..at, deep.bytes());
                    }
                }
            }
            exercise(&m);
            runs += 1;
        }
    }
    assert!(runs >= 3000, "every fixture was mutated ({runs} runs)");
}
