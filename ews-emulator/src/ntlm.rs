//! Server side of NTLM over HTTP (MS-NLMP): answers a NEGOTIATE message with a CHALLENGE, and checks
//! the client's NTLMv2 response in the AUTHENTICATE message against the account's password, as a
//! domain controller would. NTLM authenticates a connection: [`ConnectionAuth`] is the state one
//! HTTP connection carries between the legs of the handshake and after it.
//!
//! Written from the specification independently of the client in `exchange-sync-ews`, so that
//! tests of that client against the emulator check it against the protocol, not against itself.
//! Only NTLMv2 is accepted; LM and NTLMv1 responses are refused, as current Windows servers do.
//!
//! Extended Protection ([`Protection`]), as IIS applies it with `ExtendedProtectionTokenChecking`:
//! the AV pairs the client signed inside its NTLMv2 response must name this server's TLS channel
//! (MsvAvChannelBindings: MD5 of the channel bindings holding `tls-server-end-point:` and the
//! SHA-256 of the emulator's certificate, RFC 5929 / RFC 2744) and this service
//! (MsvAvTargetName: `HTTP/<host>`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use md4::{Digest, Md4};
use md5::Md5;

use crate::config::ExtendedProtection;
use crate::tenant::Directory;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// NetBIOS name of the emulated server in the challenge's target info.
const COMPUTER: &str = "EXCH01";

/// AV pair ids (MS-NLMP 2.2.2.1).
const AV_EOL: u16 = 0;
const AV_FLAGS: u16 = 6;
const AV_TARGET_NAME: u16 = 9;
const AV_CHANNEL_BINDINGS: u16 = 10;

/// What Extended Protection checks in an NTLMv2 response.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    /// `None`, `Allow` or `Require`.
    pub mode: ExtendedProtection,
    /// The channel binding hash a client on this server's TLS channel computes; none over HTTP,
    /// where there is no channel to bind to (only the target name is checked then).
    pub channel_binding: Option<[u8; 16]>,
    /// The service principal names accepted as target name (`HTTP/localhost`, `HTTP/<address>`),
    /// compared case-insensitively.
    pub service_names: Vec<String>,
}

impl Protection {
    /// The checks of `mode` for a server with this certificate (DER; none without TLS) listening
    /// on `addr`.
    pub fn new(mode: ExtendedProtection, cert_der: Option<&[u8]>, addr: &std::net::SocketAddr) -> Self {
        let channel_binding = cert_der.map(|der| {
            // The emulator signs its certificate with ECDSA and SHA-256, so RFC 5929 hashes it
            // with SHA-256.
            let cert_hash = ring::digest::digest(&ring::digest::SHA256, der);
            let mut data = b"tls-server-end-point:".to_vec();
            data.extend_from_slice(cert_hash.as_ref());
            // gss_channel_bindings_struct: no initiator or acceptor address, then the
            // application data with its length, little-endian as Windows lays it out.
            let mut bindings = vec![0u8; 16];
            bindings.extend_from_slice(&(data.len() as u32).to_le_bytes());
            bindings.extend_from_slice(&data);
            Md5::digest(&bindings).into()
        });
        let service_names = ["HTTP/localhost".to_owned(), format!("HTTP/{}", addr.ip())].into();
        Self { mode, channel_binding, service_names }
    }

    /// Why the AV pairs a client signed fail the checks, if they do.
    fn check(&self, signed_pairs: &[u8]) -> Result<(), &'static str> {
        if self.mode == ExtendedProtection::None {
            return Ok(());
        }
        let required = self.mode == ExtendedProtection::Require;
        let mut binding = None;
        let mut target = None;
        let mut rest = signed_pairs;
        while rest.len() >= 4 {
            let id = u16::from_le_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
            let Some(value) = rest.get(4..4 + len) else { return Err("malformed AV pairs") };
            match id {
                AV_EOL => break,
                AV_CHANNEL_BINDINGS => binding = Some(value),
                AV_TARGET_NAME => target = Some(value),
                _ => {}
            }
            rest = &rest[4 + len..];
        }
        if let Some(expected) = &self.channel_binding {
            // Windows clients without a channel send 16 zero bytes: the same as none.
            match binding.filter(|b| b.iter().any(|x| *x != 0)) {
                Some(b) if b == expected => {}
                Some(_) => return Err("channel binding does not match this server's certificate"),
                None if required => return Err("no channel binding (Extended Protection is required)"),
                None => {}
            }
        }
        match target.and_then(text) {
            Some(name) if self.service_names.iter().any(|s| s.eq_ignore_ascii_case(&name)) => Ok(()),
            Some(_) => Err("target name names another service"),
            None if required => Err("no target name (Extended Protection is required)"),
            None => Ok(()),
        }
    }
}

/// What one HTTP connection knows about NTLM.
#[derive(Debug, Default)]
pub struct ConnectionAuth {
    /// The challenge sent on this connection, waiting for the AUTHENTICATE message.
    pending: Option<Pending>,
    /// The account this connection authenticated as.
    pub login: Option<String>,
}

#[derive(Debug)]
struct Pending {
    server_challenge: [u8; 8],
    /// The NEGOTIATE and CHALLENGE messages of this handshake, which a MIC covers.
    negotiate: Vec<u8>,
    challenge: Vec<u8>,
}

/// What to do with an `Authorization: NTLM ...` (or `Negotiate ...`) header.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Answer 401 with this `WWW-Authenticate` value (the CHALLENGE).
    Challenge(String),
    /// The connection is now authenticated as this account address.
    Authenticated(String),
    /// The message was invalid or the response wrong: answer 401 and forget the handshake.
    Refused,
    /// The response was right but Extended Protection refuses its binding (why): answer 401.
    Unbound(&'static str),
}

/// The NTLM message inside an Authorization header value, with its scheme.
pub fn token(header: &str) -> Option<(&str, Vec<u8>)> {
    let (scheme, token) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("ntlm") && !scheme.eq_ignore_ascii_case("negotiate") {
        return None;
    }
    let message = B64.decode(token.trim()).ok()?;
    message.starts_with(SIGNATURE).then_some((scheme, message))
}

impl ConnectionAuth {
    /// Handles one handshake message received on this connection.
    pub fn step(&mut self, directory: &Directory, protection: &Protection, scheme: &str, message: &[u8]) -> Step {
        match message.get(8..12) {
            Some([1, 0, 0, 0]) => {
                let server_challenge: [u8; 8] = rand::random();
                self.login = None;
                let challenge = challenge_message(&server_challenge, &netbios_domain(&directory.domain));
                let header = format!("{scheme} {}", B64.encode(&challenge));
                self.pending = Some(Pending { server_challenge, negotiate: message.to_vec(), challenge });
                Step::Challenge(header)
            }
            Some([3, 0, 0, 0]) => {
                let Some(pending) = self.pending.take() else { return Step::Refused };
                match verify(directory, message, &pending) {
                    Some((address, signed_pairs)) => match protection.check(&signed_pairs) {
                        Ok(()) => {
                            self.login = Some(address.clone());
                            Step::Authenticated(address)
                        }
                        Err(reason) => Step::Unbound(reason),
                    },
                    None => Step::Refused,
                }
            }
            _ => {
                self.pending = None;
                Step::Refused
            }
        }
    }
}

/// `CONTOSO` for `contoso.test`.
fn netbios_domain(domain: &str) -> String {
    domain.split('.').next().unwrap_or(domain).to_uppercase()
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn av_pair(out: &mut Vec<u8>, id: u16, value: &[u8]) {
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    out.extend_from_slice(value);
}

/// Now as a Windows FILETIME.
fn filetime_now() -> u64 {
    let unix = chrono::Utc::now();
    let ticks = unix.timestamp().saturating_add(11_644_473_600).max(0) as u64 * 10_000_000;
    ticks + u64::from(unix.timestamp_subsec_nanos() / 100)
}

/// A CHALLENGE message offering NTLMv2 (extended session security, target info with the NetBIOS and
/// DNS names and a timestamp).
fn challenge_message(server_challenge: &[u8; 8], domain: &str) -> Vec<u8> {
    // UNICODE | REQUEST_TARGET | NTLM | ALWAYS_SIGN | TARGET_TYPE_DOMAIN | EXTENDED_SESSIONSECURITY
    // | TARGET_INFO | 128 | 56
    let flags: u32 = 0x0000_0001
        | 0x0000_0004
        | 0x0000_0200
        | 0x0000_8000
        | 0x0001_0000
        | 0x0008_0000
        | 0x0080_0000
        | 0x2000_0000
        | 0x8000_0000;
    let target_name = utf16(domain);
    let mut info = Vec::new();
    av_pair(&mut info, 2, &utf16(domain));
    av_pair(&mut info, 1, &utf16(COMPUTER));
    av_pair(&mut info, 4, &utf16(&domain.to_lowercase()));
    av_pair(&mut info, 7, &filetime_now().to_le_bytes());
    av_pair(&mut info, 0, &[]);
    const HEADER: u32 = 48;
    let mut m = Vec::new();
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&2u32.to_le_bytes());
    let name_len = target_name.len() as u16;
    m.extend_from_slice(&name_len.to_le_bytes());
    m.extend_from_slice(&name_len.to_le_bytes());
    m.extend_from_slice(&HEADER.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(server_challenge);
    m.extend_from_slice(&[0; 8]);
    let info_len = info.len() as u16;
    m.extend_from_slice(&info_len.to_le_bytes());
    m.extend_from_slice(&info_len.to_le_bytes());
    m.extend_from_slice(&(HEADER + u32::from(name_len)).to_le_bytes());
    m.extend_from_slice(&target_name);
    m.extend_from_slice(&info);
    m
}

/// The payload a security buffer (length, max length, offset) at `at` points to.
fn buffer(message: &[u8], at: usize) -> Option<&[u8]> {
    let h = message.get(at..at + 8)?;
    let len = usize::from(u16::from_le_bytes([h[0], h[1]]));
    let offset = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    message.get(offset..offset.checked_add(len)?)
}

fn text(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).ok()
}

fn hmac_md5(key: &[u8], data: &[&[u8]]) -> Option<[u8; 16]> {
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key).ok()?;
    for d in data {
        mac.update(d);
    }
    Some(mac.finalize().into_bytes().into())
}

/// The NTLMv2 response key of a password for a user name and domain as the client typed them.
fn response_key(password: &str, user: &str, domain: &str) -> Option<[u8; 16]> {
    let nt_hash: [u8; 16] = Md4::digest(utf16(password)).into();
    hmac_md5(&nt_hash, &[&utf16(&format!("{}{domain}", user.to_uppercase()))])
}

/// Checks an AUTHENTICATE message: the account's address when its NTLMv2 proof matches, with the
/// AV pairs the proof covers (what Extended Protection reads).
///
/// When the client's MsvAvFlags announce a MIC, the MIC must be the HMAC-MD5, under the session
/// key (HMAC-MD5 of the NTProofStr under the response key: no key exchange is negotiated), of the
/// NEGOTIATE, CHALLENGE and AUTHENTICATE messages with the MIC field zeroed.
fn verify(directory: &Directory, message: &[u8], pending: &Pending) -> Option<(String, Vec<u8>)> {
    let server_challenge = &pending.server_challenge;
    let nt_response = buffer(message, 20)?;
    let domain = text(buffer(message, 28)?)?;
    let user = text(buffer(message, 36)?)?;
    // NTProofStr (16 bytes) then the client's blob, which starts with versions 1, 1. Anything
    // shorter is an NTLMv1 response.
    if nt_response.len() < 16 + 28 || nt_response[16..18] != [1, 1] {
        return None;
    }
    let (proof, blob) = nt_response.split_at(16);
    let login = if domain.is_empty() { user.clone() } else { format!("{domain}\\{user}") };
    let account = directory.account_for_login(&login)?;
    let key = response_key(directory.password(), &user, &domain)?;
    let expected = hmac_md5(&key, &[server_challenge, blob])?;
    // Compare without an early exit.
    let same = |a: &[u8], b: &[u8]| a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if !same(&expected, proof) {
        return None;
    }
    // The blob: versions (2), reserved (6), time (8), client challenge (8), reserved (4), AV pairs.
    let pairs = &blob[28..];
    if av_flags(pairs) & 0x2 != 0 {
        let received = message.get(72..88)?;
        let mut zeroed = message.to_vec();
        zeroed[72..88].fill(0);
        let session_key = hmac_md5(&key, &[proof])?;
        let mic = hmac_md5(&session_key, &[&pending.negotiate, &pending.challenge, &zeroed])?;
        if !same(&mic, received) {
            return None;
        }
    }
    Some((account.address.clone(), pairs.to_vec()))
}

/// The value of MsvAvFlags among AV pairs (0 without it).
fn av_flags(mut pairs: &[u8]) -> u32 {
    while pairs.len() >= 4 {
        let id = u16::from_le_bytes([pairs[0], pairs[1]]);
        let len = usize::from(u16::from_le_bytes([pairs[2], pairs[3]]));
        let Some(value) = pairs.get(4..4 + len) else { return 0 };
        match id {
            AV_EOL => return 0,
            AV_FLAGS => return value.try_into().map_or(0, u32::from_le_bytes),
            _ => pairs = &pairs[4 + len..],
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmulatorConfig;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn response_key_matches_the_specification_example() {
        // MS-NLMP 4.2.4.1.1: NTOWFv2("Password", "User", "Domain").
        assert_eq!(
            response_key("Password", "User", "Domain").unwrap().to_vec(),
            hex("0c868a403bfd7a93a3001ef22ef02e3f")
        );
    }

    /// An AUTHENTICATE message built here by hand (not by the client crate), for `user` in `domain`.
    fn authenticate(user: &str, domain: &str, password: &str, server_challenge: &[u8; 8]) -> Vec<u8> {
        authenticate_with(user, domain, password, server_challenge, &[])
    }

    /// The same, signing these AV pairs (without MsvAvEOL).
    fn authenticate_with(
        user: &str,
        domain: &str,
        password: &str,
        server_challenge: &[u8; 8],
        pairs: &[u8],
    ) -> Vec<u8> {
        authenticate_signed(user, domain, password, server_challenge, pairs, None)
    }

    /// The same with a MIC over `(negotiate, challenge)` and the message itself.
    fn authenticate_signed(
        user: &str,
        domain: &str,
        password: &str,
        server_challenge: &[u8; 8],
        pairs: &[u8],
        mic: Option<(&[u8], &[u8])>,
    ) -> Vec<u8> {
        let mut blob = vec![1, 1, 0, 0, 0, 0, 0, 0];
        blob.extend_from_slice(&filetime_now().to_le_bytes());
        blob.extend_from_slice(&[0xaa; 8]);
        blob.extend_from_slice(&[0; 4]);
        blob.extend_from_slice(pairs);
        blob.extend_from_slice(&[0; 4]); // MsvAvEOL
        blob.extend_from_slice(&[0; 4]);
        let key = response_key(password, user, domain).unwrap();
        let mut nt = hmac_md5(&key, &[server_challenge, &blob]).unwrap().to_vec();
        nt.extend_from_slice(&blob);
        let payloads = [vec![0u8; 24], nt, utf16(domain), utf16(user), Vec::new(), Vec::new()];
        let mut m = SIGNATURE.to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        let header = if mic.is_some() { 88u32 } else { 64 };
        let mut offset = header;
        for p in &payloads {
            m.extend_from_slice(&(p.len() as u16).to_le_bytes());
            m.extend_from_slice(&(p.len() as u16).to_le_bytes());
            m.extend_from_slice(&offset.to_le_bytes());
            offset += p.len() as u32;
        }
        m.extend_from_slice(&0xe288_8215u32.to_le_bytes());
        m.resize(header as usize, 0);
        for p in &payloads {
            m.extend_from_slice(p);
        }
        if let Some((negotiate, challenge)) = mic {
            let session_key = hmac_md5(&key, &[&payloads[1][..16]]).unwrap();
            let code = hmac_md5(&session_key, &[negotiate, challenge, &m]).unwrap();
            m[72..88].copy_from_slice(&code);
        }
        m
    }

    #[test]
    fn a_mic_announced_in_the_flags_is_checked() {
        let config = EmulatorConfig { contacts: 0, trace_dir: None, ..Default::default() };
        let directory = crate::tenant::build(&config, std::sync::Arc::default()).0;
        let mut negotiate = SIGNATURE.to_vec();
        negotiate.extend_from_slice(&[1, 0, 0, 0, 0x07, 0x82, 0x08, 0xa2]);
        negotiate.extend_from_slice(&[0; 16]);
        let flags = [6u8, 0, 4, 0, 2, 0, 0, 0]; // MsvAvFlags = 0x2: a MIC is present
        for (tamper, expected) in [(false, Step::Authenticated("alice@contoso.test".into())), (true, Step::Refused)] {
            let mut conn = ConnectionAuth::default();
            let Step::Challenge(header) = conn.step(&directory, &Protection::default(), "NTLM", &negotiate) else {
                panic!("no challenge")
            };
            let (_, challenge) = token(&header).unwrap();
            let server_challenge: [u8; 8] = challenge[24..32].try_into().unwrap();
            let mut m = authenticate_signed(
                "alice",
                "CONTOSO",
                "exchange-sync",
                &server_challenge,
                &flags,
                Some((&negotiate, &challenge)),
            );
            if tamper {
                m[60] ^= 0x01; // a flag bit the MIC covers
            }
            assert_eq!(conn.step(&directory, &Protection::default(), "NTLM", &m), expected);
        }
    }

    #[test]
    fn handshake_accepts_the_right_password_only() {
        let config = EmulatorConfig { contacts: 0, trace_dir: None, ..Default::default() };
        let directory = crate::tenant::build(&config, std::sync::Arc::default()).0;
        let mut negotiate = SIGNATURE.to_vec();
        negotiate.extend_from_slice(&[1, 0, 0, 0, 0x07, 0x82, 0x08, 0xa2]);
        negotiate.extend_from_slice(&[0; 16]);
        for (user, domain, password, expected) in [
            ("alice", "CONTOSO", "exchange-sync", Some("alice@contoso.test")),
            ("sync-admin@contoso.test", "", "exchange-sync", Some("sync-admin@contoso.test")),
            ("alice", "CONTOSO", "wrong", None),
            ("ghost", "CONTOSO", "exchange-sync", None),
        ] {
            let mut conn = ConnectionAuth::default();
            let Step::Challenge(header) = conn.step(&directory, &Protection::default(), "NTLM", &negotiate) else {
                panic!("no challenge")
            };
            let (_, challenge) = token(&header).unwrap();
            let server_challenge: [u8; 8] = challenge[24..32].try_into().unwrap();
            assert!(buffer(&challenge, 40).is_some_and(|info| info.len() > 20));
            let step = conn.step(
                &directory,
                &Protection::default(),
                "NTLM",
                &authenticate(user, domain, password, &server_challenge),
            );
            match expected {
                Some(a) => assert_eq!(step, Step::Authenticated(a.into())),
                None => assert_eq!(step, Step::Refused),
            }
            assert_eq!(conn.login.as_deref(), expected);
        }
        // An AUTHENTICATE without a challenge on this connection is refused.
        let mut conn = ConnectionAuth::default();
        let unsent = authenticate("alice", "", "exchange-sync", &[0; 8]);
        assert_eq!(conn.step(&directory, &Protection::default(), "NTLM", &unsent), Step::Refused);
    }

    #[test]
    fn extended_protection_checks_the_signed_binding() {
        let config = EmulatorConfig { contacts: 0, trace_dir: None, ..Default::default() };
        let directory = crate::tenant::build(&config, std::sync::Arc::default()).0;
        let addr: std::net::SocketAddr = "127.0.0.1:443".parse().unwrap();
        let cert = b"a certificate";
        let mut negotiate = SIGNATURE.to_vec();
        negotiate.extend_from_slice(&[1, 0, 0, 0, 0x07, 0x82, 0x08, 0xa2]);
        negotiate.extend_from_slice(&[0; 16]);
        let pair = |id: u16, value: &[u8]| {
            let mut p = id.to_le_bytes().to_vec();
            p.extend_from_slice(&(value.len() as u16).to_le_bytes());
            p.extend_from_slice(value);
            p
        };
        let require = Protection::new(ExtendedProtection::Require, Some(cert), &addr);
        let allow = Protection::new(ExtendedProtection::Allow, Some(cert), &addr);
        let good_binding = pair(AV_CHANNEL_BINDINGS, &require.channel_binding.unwrap());
        let target = pair(AV_TARGET_NAME, &utf16("http/127.0.0.1"));
        let bound = [good_binding.clone(), target.clone()].concat();
        let wrong = [pair(AV_CHANNEL_BINDINGS, &[7; 16]), target.clone()].concat();
        let other_service = [good_binding.clone(), pair(AV_TARGET_NAME, &utf16("HTTP/evil.test"))].concat();
        for (protection, pairs, expected) in [
            (&require, &bound[..], None),
            (&require, &target[..], Some("no channel binding (Extended Protection is required)")),
            (&require, &good_binding[..], Some("no target name (Extended Protection is required)")),
            (&require, &wrong[..], Some("channel binding does not match this server's certificate")),
            (&require, &other_service[..], Some("target name names another service")),
            (&allow, &[][..], None),
            (&allow, &bound[..], None),
            (&allow, &wrong[..], Some("channel binding does not match this server's certificate")),
            (&Protection::default(), &wrong[..], None),
        ] {
            let mut conn = ConnectionAuth::default();
            let Step::Challenge(header) = conn.step(&directory, protection, "NTLM", &negotiate) else {
                panic!("no challenge")
            };
            let (_, challenge) = token(&header).unwrap();
            let server_challenge: [u8; 8] = challenge[24..32].try_into().unwrap();
            let message = authenticate_with("alice", "CONTOSO", "exchange-sync", &server_challenge, pairs);
            let step = conn.step(&directory, protection, "NTLM", &message);
            match expected {
                None => assert_eq!(step, Step::Authenticated("alice@contoso.test".into()), "{protection:?}"),
                Some(reason) => assert_eq!(step, Step::Unbound(reason), "{protection:?}"),
            }
        }
    }
}
