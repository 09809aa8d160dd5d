//! Certificate credentials: the application proves itself with a signed client assertion (a JWT
//! signed with its certificate's private key) instead of a client secret.
//!
//! Microsoft's identity platform takes, in the client-credentials grant,
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and a
//! `client_assertion`: a JWT signed with RS256 whose header names the certificate by its
//! thumbprints (`x5t`: SHA-1, `x5t#S256`: SHA-256, base64url) and whose claims are `aud` (the
//! token endpoint), `iss` and `sub` (the client id), `jti` (unique), `nbf`, `iat` and `exp`
//! (ten minutes). The certificate (its public part) is uploaded to the app registration; the
//! private key never leaves this process. A certificate is the better credential for production:
//! it cannot leak through a configuration file or a process listing the way a secret can, and the
//! key can live in a file only the service account reads.
//!
//! The RSA signature and the digests are [`ring`]'s; the PEM files are read with
//! `rustls-pki-types`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

/// The `client_assertion_type` of a JWT client assertion.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid (Microsoft recommends a short lifetime; the token endpoint
/// only needs it for the one request).
pub const ASSERTION_LIFETIME_SECS: i64 = 600;

/// Why a certificate credential cannot be used; each names the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The certificate file holds no PEM certificate.
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----): {reason}", file.display())]
    NoCertificate {
        /// The file.
        file: PathBuf,
        /// What the PEM reader found.
        reason: String,
    },
    /// The key file holds no PEM private key.
    #[error("{} holds no PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----): {reason}", file.display())]
    NoKey {
        /// The file.
        file: PathBuf,
        /// What the PEM reader found.
        reason: String,
    },
    /// The key is not an RSA key that can sign RS256 (2048 bits at least).
    #[error("{}: not an RSA private key of 2048 bits or more: {reason}", file.display())]
    NotRsa {
        /// The file.
        file: PathBuf,
        /// Why.
        reason: String,
    },
    /// The key does not belong to the certificate.
    #[error("the private key in {} does not belong to the certificate in {}", key.display(), certificate.display())]
    Mismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        certificate: PathBuf,
    },
    /// Signing failed.
    #[error("cannot sign the client assertion")]
    Sign,
}

impl CertificateError {
    /// What a caller can do: nothing but fix the files (never retryable).
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Configuration
    }
}

/// An application's certificate and private key, ready to sign client assertions. The key never
/// shows in `Debug` output; the thumbprint (public) does.
#[derive(Clone)]
pub struct ClientCertificate {
    key: Arc<RsaKeyPair>,
    sha1: String,
    sha256: String,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate").field("x5t", &self.sha1).field("key", &"***").finish()
    }
}

fn read(file: &Path) -> Result<Vec<u8>, CertificateError> {
    std::fs::read(file).map_err(|source| CertificateError::Read { file: file.to_path_buf(), source })
}

impl ClientCertificate {
    /// Reads a PEM certificate and its PEM private key (PKCS#8 or PKCS#1 RSA) from files.
    pub fn from_pem_files(certificate: &Path, key: &Path) -> Result<Self, CertificateError> {
        Self::from_pem(&read(certificate)?, certificate, &read(key)?, key)
    }

    /// From PEM text; the paths only name the sources in errors.
    pub fn from_pem(
        certificate_pem: &[u8],
        certificate_file: &Path,
        key_pem: &[u8],
        key_file: &Path,
    ) -> Result<Self, CertificateError> {
        let cert = CertificateDer::from_pem_slice(certificate_pem).map_err(|e| CertificateError::NoCertificate {
            file: certificate_file.to_path_buf(),
            reason: e.to_string(),
        })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| CertificateError::NoKey { file: key_file.to_path_buf(), reason: e.to_string() })?;
        let not_rsa = |reason: String| CertificateError::NotRsa { file: key_file.to_path_buf(), reason };
        let pair = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(not_rsa("an elliptic-curve key; Entra ID client assertions are RS256".into())),
        }
        .map_err(|e| not_rsa(e.to_string()))?;
        // The certificate carries the public key (PKCS#1 inside its SubjectPublicKeyInfo): a key
        // of another certificate would be refused by the authority with a vaguer message.
        let public = pair.public_key().as_ref();
        if !cert.as_ref().windows(public.len()).any(|w| w == public) {
            return Err(CertificateError::Mismatch {
                key: key_file.to_path_buf(),
                certificate: certificate_file.to_path_buf(),
            });
        }
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, cert.as_ref());
        let sha256 = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
        Ok(ClientCertificate {
            key: Arc::new(pair),
            sha1: URL_SAFE_NO_PAD.encode(sha1.as_ref()),
            sha256: URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        })
    }

    /// The certificate's SHA-1 thumbprint, base64url (the `x5t` header); the Entra admin center
    /// shows the same thumbprint in hex.
    pub fn x5t(&self) -> &str {
        &self.sha1
    }

    /// The thumbprint in hex, upper case, as the Entra admin center lists it.
    pub fn thumbprint_hex(&self) -> String {
        URL_SAFE_NO_PAD.decode(&self.sha1).unwrap_or_default().iter().map(|b| format!("{b:02X}")).collect()
    }

    /// A client assertion for `client_id` at the token endpoint `audience`, issued at `now`
    /// (seconds since the epoch) and valid for [`ASSERTION_LIFETIME_SECS`].
    pub fn assertion(&self, client_id: &str, audience: &str, now: i64) -> Result<String, CertificateError> {
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": self.sha1, "x5t#S256": self.sha256});
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let signed =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signed.as_bytes(), &mut signature)
            .map_err(|_| CertificateError::Sign)?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}
