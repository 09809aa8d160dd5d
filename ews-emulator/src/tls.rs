//! Optional TLS: a self-signed certificate generated at start (ECDSA P-256, for `localhost`
//! and `127.0.0.1`), so clients can test certificate verification with a custom CA bundle.
//!
//! The certificate is encoded by hand (a dozen DER structures) to avoid another dependency:
//! ring generates the key and signs.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use tokio_rustls::rustls;

/// A generated certificate and its key.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The private key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

impl SelfSigned {
    /// The certificate as PEM, for a client's trust store.
    pub fn cert_pem(&self) -> String {
        let b64 = B64.encode(&self.cert_der);
        let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
        pem
    }

    /// A rustls acceptor serving this certificate.
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(
                vec![rustls::pki_types::CertificateDer::from(self.cert_der.clone())],
                rustls::pki_types::PrivateKeyDer::Pkcs8(self.key_der.clone().into()),
            )
            .map_err(|e| e.to_string())?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn oid(arcs: &[u64]) -> Vec<u8> {
    let mut body = vec![(arcs[0] * 40 + arcs[1]) as u8];
    for &a in &arcs[2..] {
        let mut chunk = vec![(a & 0x7f) as u8];
        let mut v = a >> 7;
        while v > 0 {
            chunk.push(0x80 | (v & 0x7f) as u8);
            v >>= 7;
        }
        chunk.reverse();
        body.extend(chunk);
    }
    tlv(0x06, &body)
}

fn name(cn: &str) -> Vec<u8> {
    // Name ::= SEQUENCE OF SET OF { commonName, UTF8String }
    seq(&[tlv(0x31, &seq(&[oid(&[2, 5, 4, 3]), tlv(0x0c, cn.as_bytes())]))])
}

/// Generates a certificate valid from yesterday for ten years.
pub fn generate() -> Result<SelfSigned, String> {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).map_err(|e| e.to_string())?;
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).map_err(|e| e.to_string())?;
    let ecdsa_sha256 = seq(&[oid(&[1, 2, 840, 10045, 4, 3, 2])]);
    let now = chrono::Utc::now();
    let time = |t: chrono::DateTime<chrono::Utc>| tlv(0x17, t.format("%y%m%d%H%M%SZ").to_string().as_bytes());
    let validity = seq(&[time(now - chrono::Duration::days(1)), time(now + chrono::Duration::days(3650))]);
    let spki = seq(&[
        seq(&[oid(&[1, 2, 840, 10045, 2, 1]), oid(&[1, 2, 840, 10045, 3, 1, 7])]),
        tlv(0x03, &[&[0u8][..], key.public_key().as_ref()].concat()),
    ]);
    // subjectAltName: DNS localhost, IP 127.0.0.1
    let san = seq(&[tlv(0x82, b"localhost"), tlv(0x87, &[127, 0, 0, 1])]);
    let extensions = tlv(0xa3, &seq(&[seq(&[oid(&[2, 5, 29, 17]), tlv(0x04, &san)])]));
    let mut serial = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut serial).map_err(|e| e.to_string())?;
    serial[0] &= 0x7f;
    serial[0] |= 0x01;
    let tbs = seq(&[
        tlv(0xa0, &tlv(0x02, &[2])),
        tlv(0x02, &serial),
        ecdsa_sha256.clone(),
        name("ews-emulator"),
        validity,
        name("ews-emulator"),
        spki,
        extensions,
    ]);
    let signature = key.sign(&rng, &tbs).map_err(|e| e.to_string())?;
    let cert_der = seq(&[tbs, ecdsa_sha256, tlv(0x03, &[&[0u8][..], signature.as_ref()].concat())]);
    Ok(SelfSigned { cert_der, key_der: pkcs8.as_ref().to_vec() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_lengths_and_oids() {
        assert_eq!(tlv(0x04, &[1, 2]), vec![0x04, 2, 1, 2]);
        assert_eq!(&tlv(0x04, &[0; 200])[..3], &[0x04, 0x81, 200]);
        assert_eq!(&tlv(0x04, &[0; 300])[..4], &[0x04, 0x82, 1, 44]);
        assert_eq!(oid(&[1, 2, 840, 10045, 2, 1]), vec![0x06, 7, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
    }

    #[test]
    fn generated_certificate_is_accepted_by_rustls() {
        let c = generate().unwrap();
        assert!(c.cert_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(c.acceptor().is_ok());
    }
}
