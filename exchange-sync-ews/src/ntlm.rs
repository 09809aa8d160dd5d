//! NTLM (MS-NLMP) messages for the client side of the HTTP handshake: the NEGOTIATE message, reading
//! the server's CHALLENGE, and the AUTHENTICATE message with an NTLMv2 response.
//!
//! Only NTLMv2 is spoken (LM and NTLMv1 are broken and disabled on current Windows servers). No
//! session key exchange, signing or sealing is negotiated: HTTP authentication only needs the
//! connection to be authenticated, and TLS protects the traffic. The module computes with the
//! password but never formats it; the transport keeps it out of logs and errors.
//!
//! Extended Protection for Authentication (Exchange 2019 CU14 and later, Exchange SE): the NTLMv2
//! response names the service it is meant for (`MsvAvTargetName`, `HTTP/<host>`) and the TLS
//! channel it travels in (`MsvAvChannelBindings`, a hash of the server's certificate, RFC 5929
//! `tls-server-end-point`). Both sit inside the blob the NTProofStr signs, so an authentication
//! relayed to another server or through another TLS channel is refused by that server. When the
//! server sent a timestamp, the message also carries a MIC (MS-NLMP 3.1.5.1.2), an HMAC over the
//! three handshake messages announced by MsvAvFlags, so that nothing in them (the flags included)
//! can be changed on the way.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use md4::{Digest, Md4};
use md5::Md5;
use sha2::Digest as _;
use sha2::{Sha256, Sha384, Sha512};

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;
const NEGOTIATE_128: u32 = 0x2000_0000;
const NEGOTIATE_56: u32 = 0x8000_0000;

/// The flags the client asks for: Unicode strings, NTLM with extended session security (which,
/// together with target info, selects NTLMv2), no key exchange.
const CLIENT_FLAGS: u32 = NEGOTIATE_UNICODE
    | REQUEST_TARGET
    | NEGOTIATE_NTLM
    | NEGOTIATE_ALWAYS_SIGN
    | NEGOTIATE_EXTENDED_SESSIONSECURITY
    | NEGOTIATE_TARGET_INFO
    | NEGOTIATE_128
    | NEGOTIATE_56;

/// Longest target info accepted (Windows sends about 200 bytes); keeps every field of the
/// AUTHENTICATE message within its 16-bit length.
const MAX_TARGET_INFO: usize = 4096;

/// AV pair id of the server's timestamp (MsvAvTimestamp) in the challenge's target info.
const AV_TIMESTAMP: u16 = 7;
/// AV pair id that ends the list (MsvAvEOL).
const AV_EOL: u16 = 0;
/// AV pair id of the flags (MsvAvFlags); bit 0x2 says the message carries a MIC.
const AV_FLAGS: u16 = 6;
/// MsvAvFlags bit: the AUTHENTICATE message carries a MIC.
const AV_FLAG_MIC: u32 = 0x2;
/// Where the MIC sits in an AUTHENTICATE message (after the 64-byte header and the version).
const MIC_OFFSET: usize = 72;
/// AV pair id of the service principal name the client means (MsvAvTargetName).
const AV_TARGET_NAME: u16 = 9;
/// AV pair id of the channel binding hash (MsvAvChannelBindings).
const AV_CHANNEL_BINDINGS: u16 = 10;

/// What an AUTHENTICATE message binds the authentication to (Extended Protection).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Binding {
    /// The service principal name, `HTTP/<host>` (MsvAvTargetName).
    pub target_name: Option<String>,
    /// MD5 of the channel bindings of the TLS connection (MsvAvChannelBindings), see
    /// `channel_binding_hash`; none over plain HTTP.
    pub channel_bindings: Option<[u8; 16]>,
}

/// RFC 5929 `tls-server-end-point`: the hash of the server's certificate (DER), with the hash of
/// the certificate's signature algorithm, except that MD5 and SHA-1 are replaced by SHA-256.
/// Algorithms without a single hash (EdDSA, unknown ones) use SHA-256, as Windows does.
pub fn tls_server_end_point(cert_der: &[u8]) -> Vec<u8> {
    match signature_hash(cert_der) {
        SignatureHash::Sha384 => Sha384::digest(cert_der).to_vec(),
        SignatureHash::Sha512 => Sha512::digest(cert_der).to_vec(),
        SignatureHash::Sha256 => Sha256::digest(cert_der).to_vec(),
    }
}

/// The value of `MsvAvChannelBindings` for a TLS server certificate (DER): MD5 of the
/// `gss_channel_bindings_struct` (RFC 2744 4.1.1, as Windows serialises it: the four address
/// fields zero, then the length and bytes of the application data) whose application data is
/// `tls-server-end-point:` followed by [`tls_server_end_point`].
pub fn channel_binding_hash(cert_der: &[u8]) -> [u8; 16] {
    let mut application_data = b"tls-server-end-point:".to_vec();
    application_data.extend_from_slice(&tls_server_end_point(cert_der));
    let mut md5 = Md5::new();
    // initiator_addrtype, initiator_address.length, acceptor_addrtype, acceptor_address.length.
    md5.update([0u8; 16]);
    md5.update(u32::try_from(application_data.len()).unwrap_or(u32::MAX).to_le_bytes());
    md5.update(&application_data);
    md5.finalize().into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignatureHash {
    Sha256,
    Sha384,
    Sha512,
}

/// One DER element: its tag, its content and what follows it.
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The hash of the certificate's signature algorithm (Certificate ::= SEQUENCE { tbsCertificate,
/// signatureAlgorithm, signature }). Only this one field is read, so a few lines of DER walking do
/// instead of a certificate parser; an unreadable certificate falls back to SHA-256.
fn signature_hash(cert_der: &[u8]) -> SignatureHash {
    // OIDs (content bytes) of the SHA-384 and SHA-512 signature algorithms.
    const SHA384: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c], // sha384WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03],       // ecdsa-with-SHA384
    ];
    const SHA512: [&[u8]; 2] = [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d], // sha512WithRSAEncryption
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04],       // ecdsa-with-SHA512
    ];
    const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    // id-sha384 and id-sha512 as they appear (tag, length, content) in RSASSA-PSS parameters.
    const ID_SHA384: &[u8] = &[0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    const ID_SHA512: &[u8] = &[0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    let algorithm = || {
        let (0x30, certificate, _) = der(cert_der)? else { return None };
        let (0x30, _tbs, rest) = der(certificate)? else { return None };
        let (0x30, identifier, _) = der(rest)? else { return None };
        let (0x06, oid, parameters) = der(identifier)? else { return None };
        Some((oid, parameters))
    };
    let Some((oid, parameters)) = algorithm() else { return SignatureHash::Sha256 };
    if SHA384.contains(&oid) {
        SignatureHash::Sha384
    } else if SHA512.contains(&oid) {
        SignatureHash::Sha512
    } else if oid == RSASSA_PSS && parameters.windows(ID_SHA384.len()).any(|w| w == ID_SHA384) {
        SignatureHash::Sha384
    } else if oid == RSASSA_PSS && parameters.windows(ID_SHA512.len()).any(|w| w == ID_SHA512) {
        SignatureHash::Sha512
    } else {
        SignatureHash::Sha256
    }
}

/// The target info the client signs: the server's AV pairs followed by the binding's target name
/// and channel bindings (MS-NLMP 3.1.5.1.2), then MsvAvEOL; with `mic`, MsvAvFlags announces the MIC.
fn bound_target_info(server: &[u8], binding: &Binding, mic: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(server.len() + 128);
    let mut flags = if mic { AV_FLAG_MIC } else { 0 };
    let mut rest = server;
    while rest.len() >= 4 {
        let id = u16::from_le_bytes([rest[0], rest[1]]);
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let Some(pair) = rest.get(..4 + len) else { break };
        if id == AV_EOL {
            break;
        }
        if id == AV_FLAGS {
            flags |= pair.get(4..8).and_then(|v| v.try_into().ok()).map_or(0, u32::from_le_bytes);
        } else if id != AV_TARGET_NAME && id != AV_CHANNEL_BINDINGS {
            out.extend_from_slice(pair);
        }
        rest = &rest[4 + len..];
    }
    let mut pair = |id: u16, value: &[u8]| {
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_le_bytes());
        out.extend_from_slice(value);
    };
    if flags != 0 {
        pair(AV_FLAGS, &flags.to_le_bytes());
    }
    if let Some(hash) = &binding.channel_bindings {
        pair(AV_CHANNEL_BINDINGS, hash);
    }
    if let Some(name) = &binding.target_name {
        // A host name is short; the bound keeps the pair within its 16-bit length.
        let name = utf16le(name);
        pair(AV_TARGET_NAME, &name[..name.len().min(1024)]);
    }
    pair(AV_EOL, &[]);
    out
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid NTLM challenge: {0}")]
pub struct ChallengeError(&'static str);

/// The parts of the server's CHALLENGE message the response is computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The server's 8-byte nonce.
    pub server_challenge: [u8; 8],
    /// The flags the server agreed to.
    pub flags: u32,
    /// The target info (AV pairs), echoed inside the NTLMv2 response.
    pub target_info: Vec<u8>,
    /// The whole CHALLENGE message as received, which the MIC covers (empty: no MIC).
    pub message: Vec<u8>,
}

impl Challenge {
    /// The server's timestamp (FILETIME) from the target info, if it sent one.
    pub fn timestamp(&self) -> Option<u64> {
        let mut rest = &self.target_info[..];
        while rest.len() >= 4 {
            let id = u16::from_le_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
            let value = rest.get(4..4 + len)?;
            if id == AV_EOL {
                return None;
            }
            if id == AV_TIMESTAMP {
                return value.try_into().ok().map(u64::from_le_bytes);
            }
            rest = &rest[4 + len..];
        }
        None
    }
}

/// The NEGOTIATE message (type 1): no domain or workstation supplied.
pub fn negotiate_message() -> Vec<u8> {
    let mut m = Vec::with_capacity(32);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
    // Empty DomainNameFields and WorkstationFields (length, max length, offset).
    m.extend_from_slice(&[0u8; 16]);
    m
}

fn field(message: &[u8], at: usize) -> Option<&[u8]> {
    let header = message.get(at..at + 8)?;
    let len = usize::from(u16::from_le_bytes([header[0], header[1]]));
    let offset = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    message.get(offset..offset.checked_add(len)?)
}

/// Reads a CHALLENGE message (type 2).
pub fn parse_challenge(message: &[u8]) -> Result<Challenge, ChallengeError> {
    if message.len() < 32 || &message[..8] != SIGNATURE {
        return Err(ChallengeError("not an NTLMSSP message"));
    }
    if message[8..12] != 2u32.to_le_bytes() {
        return Err(ChallengeError("not a CHALLENGE message"));
    }
    let flags = u32::from_le_bytes([message[20], message[21], message[22], message[23]]);
    let mut server_challenge = [0u8; 8];
    server_challenge.copy_from_slice(&message[24..32]);
    let target_info = if flags & NEGOTIATE_TARGET_INFO != 0 {
        field(message, 40).ok_or(ChallengeError("target info out of bounds"))?.to_vec()
    } else {
        Vec::new()
    };
    if target_info.len() > MAX_TARGET_INFO {
        return Err(ChallengeError("target info too long"));
    }
    if target_info.is_empty() {
        // NTLMv2 needs the target info; a server without it only speaks NTLMv1, which we refuse.
        return Err(ChallengeError("no target info (the server offers only NTLMv1)"));
    }
    Ok(Challenge { server_challenge, flags, target_info, message: message.to_vec() })
}

/// A user name split into the account and the domain NTLM computes with: `DOMAIN\user` gives both;
/// a UPN (`user@domain`) is sent whole with an empty domain, which Windows accepts.
pub fn split_user(login: &str) -> (&str, &str) {
    match login.split_once('\\') {
        Some((domain, user)) => (user, domain),
        None => (login, ""),
    }
}

fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2: the key both sides derive from the password, user and domain.
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = Md4::digest(utf16le(password)).into();
    let identity = utf16le(&(user.to_uppercase() + domain));
    hmac_md5(&nt_hash, &[&identity])
}

/// The NTLMv2 and LMv2 responses for a challenge (MS-NLMP 3.3.2).
///
/// `time` is the FILETIME put into the response (the server's timestamp when it sent one) and
/// `client_challenge` the client's 8-byte nonce.
pub fn responses(key: &[u8; 16], challenge: &Challenge, time: u64, client_challenge: [u8; 8]) -> (Vec<u8>, Vec<u8>) {
    let mut blob = Vec::with_capacity(32 + challenge.target_info.len());
    blob.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    blob.extend_from_slice(&time.to_le_bytes());
    blob.extend_from_slice(&client_challenge);
    blob.extend_from_slice(&[0; 4]);
    blob.extend_from_slice(&challenge.target_info);
    blob.extend_from_slice(&[0; 4]);
    let proof = hmac_md5(key, &[&challenge.server_challenge, &blob]);
    let mut nt = proof.to_vec();
    nt.extend_from_slice(&blob);
    // With a server timestamp the LMv2 response must be zeros (MS-NLMP 3.1.5.1.2).
    let lm = if challenge.timestamp().is_some() {
        vec![0; 24]
    } else {
        let mut lm = hmac_md5(key, &[&challenge.server_challenge, &client_challenge]).to_vec();
        lm.extend_from_slice(&client_challenge);
        lm
    };
    (nt, lm)
}

/// The AUTHENTICATE message (type 3) answering `challenge` for `login` (`DOMAIN\user` or a UPN),
/// bound to the service and TLS channel of `binding`.
pub fn authenticate_message(login: &str, password: &str, challenge: &Challenge, binding: &Binding) -> Vec<u8> {
    let (user, domain) = split_user(login);
    let key = ntowf_v2(password, user, domain);
    // MS-NLMP: a client SHOULD send a MIC when the server sent a timestamp.
    let mic = challenge.timestamp().is_some() && !challenge.message.is_empty();
    let bound = Challenge { target_info: bound_target_info(&challenge.target_info, binding, mic), ..challenge.clone() };
    let time = bound.timestamp().unwrap_or_else(now_filetime);
    let (nt, lm) = responses(&key, &bound, time, rand::random());
    let domain = utf16le(domain);
    let user = utf16le(user);
    let workstation: Vec<u8> = Vec::new();
    let session_key: Vec<u8> = Vec::new();
    let flags = CLIENT_FLAGS & challenge.flags | NEGOTIATE_UNICODE;
    let payloads: [&[u8]; 6] = [&lm, &nt, &domain, &user, &workstation, &session_key];
    // With a MIC, the version (zero: not negotiated) and the MIC follow the 64-byte header.
    let header = if mic { MIC_OFFSET + 16 } else { 64 };
    let mut m = Vec::with_capacity(header + payloads.iter().map(|p| p.len()).sum::<usize>());
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&3u32.to_le_bytes());
    let mut offset = header;
    for p in payloads {
        // Lengths are bounded: the target info comes from a u16-sized field, names from the caller.
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&u32::try_from(offset).unwrap_or(u32::MAX).to_le_bytes());
        offset += p.len();
    }
    m.extend_from_slice(&flags.to_le_bytes());
    m.resize(header, 0);
    for p in payloads {
        m.extend_from_slice(p);
    }
    if mic {
        // Without key exchange the exported session key is the session base key, HMAC-MD5 of the
        // NTProofStr (the first 16 bytes of the NTLMv2 response) under the response key.
        let session_key = hmac_md5(&key, &[&nt[..16]]);
        let code = hmac_md5(&session_key, &[&negotiate_message(), &challenge.message, &m]);
        m[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(&code);
    }
    m
}

/// Now as a Windows FILETIME (100 ns ticks since 1601-01-01).
fn now_filetime() -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let since_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    (since_unix.as_secs() + EPOCH_DIFF_SECS) * 10_000_000 + u64::from(since_unix.subsec_nanos() / 100)
}

/// The NTLM token of a `WWW-Authenticate` header value (`NTLM <base64>` or `Negotiate <base64>`).
pub fn token_from_header(value: &str) -> Option<Vec<u8>> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("ntlm") && !scheme.eq_ignore_ascii_case("negotiate") {
        return None;
    }
    B64.decode(token.trim()).ok()
}

/// The `Authorization` header value carrying a message.
pub fn header_value(message: &[u8]) -> String {
    format!("NTLM {}", B64.encode(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// The NTLMv2 example of MS-NLMP section 4.2.4 (user "User", domain "Domain", password
    /// "Password", time 0, client challenge 0xaa * 8).
    fn spec_challenge() -> Challenge {
        let mut target_info = hex("02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00");
        target_info.extend(hex("01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00"));
        target_info.extend(hex("00 00 00 00"));
        Challenge {
            server_challenge: hex("0123456789abcdef").try_into().unwrap(),
            flags: 0xe28a_8233,
            target_info,
            message: Vec::new(),
        }
    }

    #[test]
    fn ntlmv2_matches_the_specification_example() {
        let key = ntowf_v2("Password", "User", "Domain");
        assert_eq!(key.to_vec(), hex("0c868a403bfd7a93a3001ef22ef02e3f"));
        let (nt, lm) = responses(&key, &spec_challenge(), 0, [0xaa; 8]);
        assert_eq!(nt[..16].to_vec(), hex("68cd0ab851e51c96aabc927bebef6a1c"));
        assert_eq!(lm, hex("86c35097ac9cec102554764a57cccc19 aaaaaaaaaaaaaaaa"));
    }

    #[test]
    fn negotiate_and_authenticate_messages_are_well_formed() {
        let n = negotiate_message();
        assert_eq!(&n[..8], SIGNATURE);
        assert_eq!(n.len(), 32);
        let m = authenticate_message("CONTOSO\\alice", "secret", &spec_challenge(), &Binding::default());
        assert_eq!(&m[8..12], &3u32.to_le_bytes());
        assert_eq!(field(&m, 28).unwrap(), utf16le("CONTOSO").as_slice());
        assert_eq!(field(&m, 36).unwrap(), utf16le("alice").as_slice());
        assert_eq!(field(&m, 20).unwrap().len(), 16 + 28 + spec_challenge().target_info.len() + 4);
        assert!(!m.windows(12).any(|w| w == utf16le("secret").as_slice()), "the password is never sent");
    }

    /// A self-signed ECDSA P-256 certificate signed with SHA-256 (`openssl req -x509 -newkey ec
    /// -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -subj /CN=mail.contoso.test`), base64 DER.
    const CERT_P256_SHA256: &str = "\
        MIIBjTCCATOgAwIBAgIUfNpr5Z6r5fvZUPbX/0WwmX0Ow24wCgYIKoZIzj0EAwIw\
        HDEaMBgGA1UEAwwRbWFpbC5jb250b3NvLnRlc3QwHhcNMjYxMjA3MTQwMjI0WhcN\
        MzYxMjA0MTQwMjI0WjAcMRowGAYDVQQDDBFtYWlsLmNvbnRvc28udGVzdDBZMBMG\
        ByqGSM49AgEGCCqGSM49AwEHA0IABDzW41kLsWzHPWHaiLHD3G89yVF6g02ZkxRK\
        S0LsotIf7a24MCmMvP2zN5cMAihQNOWjm6U5GQZXveGgN3QtOKujUzBRMB0GA1Ud\
        DgQWBBR/XqlUrcwYokvyY76P9yS1RmbqsTAfBgNVHSMEGDAWgBR/XqlUrcwYokvy\
        Y76P9yS1RmbqsTAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIQC+\
        cJ5a1cIvUn40MI3s0N/9Yh+YEAEb5pUlyhxKQcF1ugIgHBhImrzTnTmjDUtNFl7I\
        a9okGaADcICYz5a4700mKZw=";

    /// The same with P-384 and SHA-384 (`-pkeyopt ec_paramgen_curve:P-384 -sha384`): RFC 5929
    /// hashes it with SHA-384.
    const CERT_P384_SHA384: &str = "\
        MIIByzCCAVCgAwIBAgIURFGZYinhQ6mNfIxZUK6gcVtsL6AwCgYIKoZIzj0EAwMw\
        HDEaMBgGA1UEAwwRbWFpbC5jb250b3NvLnRlc3QwHhcNMjYxMjA3MTQwMjI0WhcN\
        MzYxMjA0MTQwMjI0WjAcMRowGAYDVQQDDBFtYWlsLmNvbnRvc28udGVzdDB2MBAG\
        ByqGSM49AgEGBSuBBAAiA2IABLvNC70NcMhn5Rj4Eg1+mSMNIDaCWnCx7y33/jqU\
        KaekepDVSmR8/DUUpfqoYfeeklrZQ0JTEdqeUgNQxCHdTnBfA8S87S/hW3UlZjyp\
        2oh3kt/Gmq8rt12GMmaLiFjRV6NTMFEwHQYDVR0OBBYEFFxDbga1z9JfQqoI6gCf\
        OIN4cTLrMB8GA1UdIwQYMBaAFFxDbga1z9JfQqoI6gCfOIN4cTLrMA8GA1UdEwEB\
        /wQFMAMBAf8wCgYIKoZIzj0EAwMDaQAwZgIxAP+qzBkQ/kLOt0zpBK0Ax1nb+Gnf\
        A+mZeSlgJoiwoWN9QyjupStaZtyVSCMfh0URcAIxAOIwhaNkPrxy6vtGXm5T1xdw\
        NbgSuJo+YWE2YYBconitDOmerOAwg45EsegpulYTaQ==";

    /// Known answers computed with OpenSSL and Python, independently of this module (the
    /// certificate in `c.pem`, the hash `sha256` or `sha384`):
    ///
    /// ```text
    /// openssl x509 -in c.pem -outform DER | openssl dgst -sha256 -binary | python3 -c 'import sys,
    ///   hashlib,struct; d=b"tls-server-end-point:"+sys.stdin.buffer.read();
    ///   print(hashlib.md5(bytes(16)+struct.pack("<I",len(d))+d).hexdigest())'
    /// ```
    #[test]
    fn channel_binding_hash_matches_openssl() {
        let p256 = B64.decode(CERT_P256_SHA256).unwrap();
        assert_eq!(signature_hash(&p256), SignatureHash::Sha256);
        assert_eq!(channel_binding_hash(&p256).to_vec(), hex("774c6d186de3387102319c1b3db39f6d"));
        let p384 = B64.decode(CERT_P384_SHA384).unwrap();
        assert_eq!(signature_hash(&p384), SignatureHash::Sha384);
        assert_eq!(tls_server_end_point(&p384).len(), 48);
        assert_eq!(channel_binding_hash(&p384).to_vec(), hex("86408f0d17fa7aea429b58b5746ecbe5"));
        // Unreadable DER falls back to SHA-256 rather than failing.
        assert_eq!(signature_hash(b"\x30\x82"), SignatureHash::Sha256);
    }

    #[test]
    fn the_signed_blob_carries_the_binding() {
        let binding =
            Binding { target_name: Some("HTTP/mail.contoso.test".into()), channel_bindings: Some([0x5a; 16]) };
        let info = bound_target_info(&spec_challenge().target_info, &binding, false);
        let mut expected = hex("02 00 0c 00 44 00 6f 00 6d 00 61 00 69 00 6e 00");
        expected.extend(hex("01 00 0c 00 53 00 65 00 72 00 76 00 65 00 72 00"));
        expected.extend(hex("0a 00 10 00"));
        expected.extend([0x5a; 16]);
        expected.extend(hex("09 00 2c 00"));
        expected.extend(utf16le("HTTP/mail.contoso.test"));
        expected.extend(hex("00 00 00 00"));
        assert_eq!(info, expected);
        // The NTLMv2 response's blob (after the 16-byte proof and 28 bytes of header) holds it.
        let m = authenticate_message("CONTOSO\\alice", "secret", &spec_challenge(), &binding);
        let nt = field(&m, 20).unwrap();
        assert_eq!(&nt[16 + 28..nt.len() - 4], expected.as_slice());
    }

    #[test]
    fn a_challenge_with_a_timestamp_gets_a_mic() {
        let info = [7, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0];
        let challenge = parse_challenge(&challenge_message(&info, 48)).unwrap();
        let m = authenticate_message("CONTOSO\\alice", "secret", &challenge, &Binding::default());
        // Payloads start after the version and the MIC; the signed blob announces the MIC.
        assert_eq!(u32::from_le_bytes(m[16..20].try_into().unwrap()), 88);
        assert_ne!(&m[MIC_OFFSET..MIC_OFFSET + 16], &[0; 16]);
        let nt = field(&m, 20).unwrap();
        assert_eq!(&nt[16 + 28..], hex("07 00 08 00 0102030405060708 06 00 04 00 02000000 00000000 00000000"));
        // The MIC is HMAC-MD5 over the three messages under the session key.
        let key = ntowf_v2("secret", "alice", "CONTOSO");
        let session_key = hmac_md5(&key, &[&nt[..16]]);
        let mut zeroed = m.clone();
        zeroed[MIC_OFFSET..MIC_OFFSET + 16].fill(0);
        let expected = hmac_md5(&session_key, &[&negotiate_message(), &challenge.message, &zeroed]);
        assert_eq!(&m[MIC_OFFSET..MIC_OFFSET + 16], &expected);
    }

    fn challenge_message(target_info: &[u8], offset: u32) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(SIGNATURE);
        m.extend_from_slice(&2u32.to_le_bytes());
        m.extend_from_slice(&[0; 8]);
        m.extend_from_slice(&(NEGOTIATE_TARGET_INFO | NEGOTIATE_UNICODE).to_le_bytes());
        m.extend_from_slice(&[7; 8]);
        m.extend_from_slice(&[0; 8]);
        let len = target_info.len() as u16;
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m.extend_from_slice(&offset.to_le_bytes());
        m.extend_from_slice(target_info);
        m
    }

    #[test]
    fn challenges_are_checked() {
        assert!(parse_challenge(b"garbage").is_err());
        let info = [7, 0, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0];
        let c = parse_challenge(&challenge_message(&info, 48)).unwrap();
        assert_eq!(c.server_challenge, [7; 8]);
        assert_eq!(c.timestamp(), Some(u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8])));
        assert_eq!(
            parse_challenge(&challenge_message(&info, 200)).unwrap_err(),
            ChallengeError("target info out of bounds")
        );
        assert!(parse_challenge(&challenge_message(&[], 48)).is_err(), "NTLMv1-only servers are refused");
        assert_eq!(split_user("CONTOSO\\bob"), ("bob", "CONTOSO"));
        assert_eq!(split_user("bob@contoso.test"), ("bob@contoso.test", ""));
        assert_eq!(token_from_header("NTLM AAEC"), Some(vec![0, 1, 2]));
        assert_eq!(token_from_header("Basic realm=\"x\""), None);
    }
}
