//! Negotiate (SPNEGO over HTTP, RFC 4559) with Kerberos, through the system's GSSAPI (MIT krb5 on
//! Linux). Exchange SE moves to Kerberos by default; with Kerberos the password never reaches the
//! client at all: it authenticates with the service account's ticket, which GSSAPI takes from the
//! credential cache (`KRB5CCNAME`, filled by `kinit`) or gets by itself from a client keytab
//! (`KRB5_CLIENT_KTNAME`).
//!
//! Built only with the `kerberos` cargo feature (it links libgssapi_krb5); without it, a client
//! configured for Negotiate fails with an error saying so.

/// Why no Negotiate token could be made: the text names the principal and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenError(pub(crate) String);

/// The application data of the channel bindings for a TLS server certificate (RFC 5929
/// `tls-server-end-point`), which GSSAPI wraps into its channel bindings structure.
pub(crate) fn channel_binding_data(cert_der: &[u8]) -> Vec<u8> {
    let mut data = b"tls-server-end-point:".to_vec();
    data.extend_from_slice(&crate::ntlm::tls_server_end_point(cert_der));
    data
}

/// The first (and, without mutual authentication, only) Negotiate token of `principal` for the
/// service `HTTP/<host>`, bound to the TLS channel when `channel_binding` is given. Blocking: GSSAPI
/// may ask the KDC for a service ticket.
#[cfg(feature = "kerberos")]
pub(crate) fn initial_token(
    principal: &str,
    host: &str,
    channel_binding: Option<&[u8]>,
) -> Result<Vec<u8>, TokenError> {
    use libgssapi::context::{ClientCtx, CtxFlags};
    use libgssapi::credential::{Cred, CredUsage};
    use libgssapi::name::Name;
    use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL};

    let name = Name::new(principal.as_bytes(), Some(&GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| TokenError(format!("invalid Kerberos principal {principal}: {e}")))?;
    let cred = Cred::acquire(Some(&name), None, CredUsage::Initiate, None).map_err(|e| {
        TokenError(format!(
            "no Kerberos ticket for {principal}: kinit or keytab (a credential cache in KRB5CCNAME, or the \
             account's keytab in KRB5_CLIENT_KTNAME) ({e})"
        ))
    })?;
    let target = Name::new(format!("HTTP@{host}").as_bytes(), Some(&GSS_NT_HOSTBASED_SERVICE))
        .map_err(|e| TokenError(format!("invalid service name HTTP/{host}: {e}")))?;
    let mut context = ClientCtx::new(Some(cred), target, CtxFlags::empty(), Some(&GSS_MECH_SPNEGO));
    let token = context.step(None, channel_binding).map_err(|e| {
        TokenError(format!(
            "no Kerberos service ticket of {principal} for HTTP/{host}: check that the KDC knows the service \
             principal HTTP/{host} (setspn on the Exchange server's account) and that the URL names that host ({e})"
        ))
    })?;
    Ok(token.map(|t| t.to_vec()).unwrap_or_default())
}

/// Without the `kerberos` feature there is no GSSAPI to ask.
#[cfg(not(feature = "kerberos"))]
pub(crate) fn initial_token(
    principal: &str,
    host: &str,
    channel_binding: Option<&[u8]>,
) -> Result<Vec<u8>, TokenError> {
    let _ = (host, channel_binding);
    Err(TokenError(format!(
        "Negotiate/Kerberos for {principal} needs a build with Kerberos support (cargo feature `kerberos` of \
         exchange-sync-ews, linking the system's GSSAPI)"
    )))
}

/// The authentication schemes a 401 offers (`WWW-Authenticate`), e.g. `["Negotiate", "NTLM"]`.
pub(crate) fn offered(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_schemes_and_binding_data() {
        let mut h = reqwest::header::HeaderMap::new();
        h.append(reqwest::header::WWW_AUTHENTICATE, reqwest::header::HeaderValue::from_static("Negotiate"));
        h.append(reqwest::header::WWW_AUTHENTICATE, reqwest::header::HeaderValue::from_static("NTLM"));
        h.append(reqwest::header::WWW_AUTHENTICATE, reqwest::header::HeaderValue::from_static("Basic realm=\"x\""));
        assert_eq!(offered(&h), ["Negotiate", "NTLM", "Basic"]);
        let data = channel_binding_data(b"not DER");
        assert!(data.starts_with(b"tls-server-end-point:") && data.len() == 21 + 32);
    }
}
