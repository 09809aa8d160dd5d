//! The token endpoint's check of a client assertion (certificate credentials): a JWT signed with
//! RS256 by the key of the certificate registered for the application
//! ([`crate::GraphEmulatorConfig::client_certificate`]), refused with Entra ID's error codes when
//! the signature, the certificate's thumbprint, the audience, the issuer or the time range is
//! wrong.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

/// The only `client_assertion_type` Entra ID takes.
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Clock skew tolerated on `nbf` and `exp`, as the authority does.
const SKEW_SECS: i64 = 300;

/// A refusal: HTTP status, OAuth2 `error`, and the `error_description` with its AADSTS code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status (400 or 401).
    pub status: u16,
    /// OAuth2 error (`invalid_client`, `invalid_request`).
    pub error: &'static str,
    /// The description, starting with the AADSTS code.
    pub description: String,
}

fn refuse(status: u16, error: &'static str, description: impl Into<String>) -> Refusal {
    Refusal { status, error, description: description.into() }
}

fn part(p: &str) -> Result<Vec<u8>, Refusal> {
    URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| refuse(400, "invalid_request", "AADSTS50027: JWT token is invalid or malformed."))
}

fn json_part(p: &str) -> Result<Value, Refusal> {
    serde_json::from_slice(&part(p)?)
        .map_err(|_| refuse(400, "invalid_request", "AADSTS50027: JWT token is invalid or malformed."))
}

/// Checks `assertion` for `client_id` at the token endpoint `audience`, at time `now` (seconds
/// since the epoch), against `certificate` (DER).
pub fn verify(assertion: &str, certificate: &[u8], client_id: &str, audience: &str, now: i64) -> Result<(), Refusal> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(refuse(400, "invalid_request", "AADSTS50027: JWT token is invalid or malformed."));
    };
    let header = json_part(h)?;
    let claims = json_part(c)?;
    let signature = part(s)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(refuse(
            401,
            "invalid_client",
            "AADSTS5002730: Invalid JWT token. Unsupported key for the signing algorithm.",
        ));
    }
    let thumbprint = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, certificate);
    if header.get("x5t").and_then(Value::as_str) != Some(URL_SAFE_NO_PAD.encode(thumbprint.as_ref()).as_str()) {
        return Err(refuse(
            401,
            "invalid_client",
            "AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found.]",
        ));
    }
    let der = CertificateDer::from(certificate);
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| refuse(500, "server_error", format!("the registered certificate cannot be parsed: {e}")))?;
    let signed = format!("{h}.{c}");
    if cert.verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature).is_err() {
        return Err(refuse(
            401,
            "invalid_client",
            "AADSTS700027: Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]",
        ));
    }
    if claims.get("aud").and_then(Value::as_str) != Some(audience) {
        return Err(refuse(
            401,
            "invalid_client",
            format!("AADSTS50013: Assertion audience claim does not match the required value: expected {audience}."),
        ));
    }
    let iss = claims.get("iss").and_then(Value::as_str);
    let sub = claims.get("sub").and_then(Value::as_str);
    if iss != Some(client_id) || sub != Some(client_id) {
        return Err(refuse(
            401,
            "invalid_client",
            "AADSTS700021: Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
    if now > exp + SKEW_SECS || now + SKEW_SECS < nbf {
        return Err(refuse(
            401,
            "invalid_client",
            "AADSTS700024: Client assertion is not within its valid time range.",
        ));
    }
    Ok(())
}
