//! Any bytes a server may send, through every response parser and the NTLM challenge reader: no
//! panic, bounded memory (the parse limits cap size and depth).
//!
//! Run briefly on stable: `scripts/fuzz-smoke.sh` (the test command does). Long runs:
//! `cargo +nightly fuzz run parse_response -- -max_total_time=3600` from `exchange-sync-ews/`.

#![no_main]

use exchange_sync_ews::ParseLimits;
use exchange_sync_ews::internals::Binding;
use exchange_sync_ews::operation::{directory, folders, items, notifications, sync};
use exchange_sync_ews::soap::parse_envelope;
use exchange_sync_ews::streaming::EnvelopeSplitter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ParseLimits { max_bytes: 1 << 20, max_depth: 64 };
    if let Ok(r) = parse_envelope("fuzz", data, limits) {
        let b = &r.body;
        let _ = items::parse_find_item(b.clone());
        let _ = items::parse_create_item(b.clone());
        let _ = items::parse_update_item(b.clone());
        let _ = items::parse_delete_item(b);
        let _ = folders::parse_get_folder(b);
        let _ = folders::parse_find_folder(b);
        let _ = sync::parse_sync_folder_items(b.clone());
        let _ = sync::parse_sync_folder_hierarchy(b);
        let _ = notifications::parse_get_events(b);
        let _ = notifications::parse_streaming_batch(b);
        let _ = notifications::parse_subscribe(b);
        let _ = directory::parse_expand_dl(b);
        if let Ok(list) = items::parse_get_item(b.clone()) {
            for item in list.into_iter().flatten() {
                let _ = exchange_sync_ews::mapping::to_item(&item);
            }
        }
    }
    if let Ok(challenge) = exchange_sync_ews::internals::parse_challenge(data) {
        // Without and with Extended Protection's binding (target name and channel bindings).
        let bound = Binding { target_name: Some("HTTP/mail.contoso.test".into()), channel_bindings: Some([7; 16]) };
        for binding in [Binding::default(), bound] {
            let _ =
                exchange_sync_ews::internals::authenticate_message("CONTOSO\\user", "password", &challenge, &binding);
        }
    }
    let mut splitter = EnvelopeSplitter::new(1 << 20);
    for chunk in data.chunks(7) {
        if splitter.push(chunk).is_err() {
            break;
        }
    }
});
