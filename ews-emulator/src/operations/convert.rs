//! ConvertId: item and folder ids between the formats Exchange converts.
//!
//! An emulator id ([`crate::store::encode_id`]) names a mailbox and an object; its entry id
//! (what MAPI and Outlook use) is built from the same two: flags (4 zero bytes), a store GUID
//! derived from the mailbox, the object kind and number. The formats are then what Exchange's
//! are made of: `EwsId` (and `EwsLegacyId`) the EWS id, `EntryId` the entry id in base64,
//! `HexEntryId` in uppercase hex, `StoreId` the entry id in base64 behind its length, `OwaId` the
//! entry id in URL-safe base64. An id that is none of these answers ErrorInvalidIdMalformed, as
//! Exchange does; an unknown `Mailbox`, ErrorNonExistentMailbox.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};

use super::{Context, Responses, required, schema_fault};
use crate::response_code::EwsError;
use crate::soap::Fault;
use crate::store::{IdKind, decode_id, encode_id};
use crate::xml::{Element, escape};

/// Formats of `t:IdFormatType` the emulator converts.
const FORMATS: &[&str] = &["EwsLegacyId", "EwsId", "EntryId", "HexEntryId", "StoreId", "OwaId"];

/// The store GUID of a mailbox in its entry ids.
fn store_guid(mailbox: u32) -> [u8; 16] {
    let mut g = *b"emulator-store\0\0";
    g[12..16].copy_from_slice(&mailbox.to_be_bytes());
    g
}

/// The entry id of an object: flags, store GUID, kind, number.
fn entry_id(kind: IdKind, mailbox: u32, number: u64) -> Vec<u8> {
    let mut raw = vec![0u8; 4];
    raw.extend_from_slice(&store_guid(mailbox));
    raw.push(match kind {
        IdKind::Item => b'I',
        IdKind::Folder => b'F',
    });
    raw.extend_from_slice(&number.to_be_bytes());
    raw
}

fn from_entry_id(raw: &[u8]) -> Option<(IdKind, u32, u64)> {
    if raw.len() != 29 || raw[..4] != [0, 0, 0, 0] || raw[4..16] != store_guid(0)[..12] {
        return None;
    }
    let mailbox = u32::from_be_bytes(raw[16..20].try_into().ok()?);
    let kind = match raw[20] {
        b'I' => IdKind::Item,
        b'F' => IdKind::Folder,
        _ => return None,
    };
    Some((kind, mailbox, u64::from_be_bytes(raw[21..29].try_into().ok()?)))
}

/// Reads an id in a format into (kind, mailbox, number).
fn read(format: &str, id: &str) -> Option<(IdKind, u32, u64)> {
    let id = id.trim();
    match format {
        "EwsId" | "EwsLegacyId" => decode_id(IdKind::Item, id)
            .map(|(m, n)| (IdKind::Item, m, n))
            .or_else(|| decode_id(IdKind::Folder, id).map(|(m, n)| (IdKind::Folder, m, n))),
        "EntryId" => from_entry_id(&B64.decode(id).ok()?),
        "HexEntryId" => {
            if !id.len().is_multiple_of(2) {
                return None;
            }
            let bytes: Option<Vec<u8>> =
                (0..id.len()).step_by(2).map(|i| u8::from_str_radix(id.get(i..i + 2)?, 16).ok()).collect();
            from_entry_id(&bytes?)
        }
        "StoreId" => {
            let raw = B64.decode(id).ok()?;
            let (len, rest) = raw.split_first_chunk::<2>()?;
            (usize::from(u16::from_le_bytes(*len)) == rest.len()).then_some(())?;
            from_entry_id(rest)
        }
        "OwaId" => from_entry_id(&B64URL.decode(id).ok()?),
        _ => None,
    }
}

/// Writes (kind, mailbox, number) in a format.
fn write(format: &str, kind: IdKind, mailbox: u32, number: u64) -> String {
    let entry = entry_id(kind, mailbox, number);
    match format {
        "EntryId" => B64.encode(&entry),
        "HexEntryId" => entry.iter().map(|b| format!("{b:02X}")).collect(),
        "StoreId" => {
            let mut raw = (entry.len() as u16).to_le_bytes().to_vec();
            raw.extend_from_slice(&entry);
            B64.encode(raw)
        }
        "OwaId" => B64URL.encode(&entry),
        _ => encode_id(kind, mailbox, number),
    }
}

/// ConvertId: one message per source id, with the id in the destination format.
pub fn convert_id(ctx: &Context<'_>, op: &Element) -> Result<String, Fault> {
    let destination =
        op.attr("DestinationFormat").ok_or_else(|| schema_fault("ConvertId requires DestinationFormat"))?;
    if !FORMATS.contains(&destination) {
        return Err(schema_fault(format!("invalid DestinationFormat {destination}")));
    }
    let sources = required(op, "SourceIds")?;
    let mut r = Responses::new("ConvertId");
    for source in &sources.children {
        let res = (|| {
            if source.name != "AlternateId" {
                // Public folder ids (AlternatePublicFolderId...) are not converted by the emulator.
                return Err(EwsError::id_malformed());
            }
            let format = source.attr("Format").unwrap_or("");
            let mailbox = source.attr("Mailbox").unwrap_or("");
            let (kind, index, number) =
                read(format, source.attr("Id").unwrap_or("")).ok_or_else(EwsError::id_malformed)?;
            let named = ctx.shared.store.mailbox_index(mailbox).ok_or_else(|| EwsError::no_mailbox(mailbox))?;
            if named != index {
                // The id belongs to another mailbox than the one named.
                return Err(EwsError::id_malformed());
            }
            Ok(format!(
                r#"<m:AlternateId xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="t:AlternateIdType" Format="{destination}" Id="{}" Mailbox="{}"/>"#,
                escape(&write(destination, kind, index, number)),
                escape(mailbox)
            ))
        })();
        r.push(res, "");
    }
    Ok(r.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_round_trips() {
        for f in FORMATS {
            for kind in [IdKind::Item, IdKind::Folder] {
                let text = write(f, kind, 7, 123_456);
                assert_eq!(read(f, &text), Some((kind, 7, 123_456)), "{f}");
            }
        }
        assert_eq!(read("HexEntryId", "zz"), None);
        assert_eq!(read("EwsId", "DUMMY"), None);
    }
}
