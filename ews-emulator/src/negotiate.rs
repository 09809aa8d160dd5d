//! Server side of Negotiate (SPNEGO over HTTP, RFC 4559) with Kerberos, through the system's
//! GSSAPI: the emulator accepts the service tickets a KDC issued for its service principal
//! (`HTTP/<host>`), with the keys GSSAPI finds in the acceptor keytab (`KRB5_KTNAME`). Tests run
//! it against a throwaway MIT realm on loopback (`scripts/kdc.sh`).
//!
//! Built only with the `kerberos` cargo feature; without it, Negotiate tokens that are not NTLM
//! are refused.

/// The client principal (`user@REALM`) a complete Negotiate token authenticates, with the reply
/// token for mutual authentication if GSSAPI made one.
#[cfg(feature = "kerberos")]
pub fn accept(token: &[u8]) -> Result<(String, Option<Vec<u8>>), String> {
    use libgssapi::context::{SecurityContext as _, ServerCtx};
    use libgssapi::credential::{Cred, CredUsage};

    let cred = Cred::acquire(None, None, CredUsage::Accept, None)
        .map_err(|e| format!("no acceptor credentials (service keytab, KRB5_KTNAME): {e}"))?;
    let mut context = ServerCtx::new(Some(cred));
    let reply = context.step(token).map_err(|e| format!("Kerberos token refused: {e}"))?;
    if !context.is_complete() {
        return Err("Negotiate needs another leg (only Kerberos is accepted)".into());
    }
    let principal = context.source_name().map_err(|e| format!("no client name: {e}"))?.to_string();
    Ok((principal, reply.map(|r| r.to_vec())))
}

/// Without the `kerberos` feature there is no GSSAPI to ask.
#[cfg(not(feature = "kerberos"))]
pub fn accept(token: &[u8]) -> Result<(String, Option<Vec<u8>>), String> {
    let _ = token;
    Err("this emulator was built without Kerberos (cargo feature `kerberos`)".into())
}

/// The account address of a Kerberos principal: `sync-admin@CONTOSO.TEST` logs in as
/// `sync-admin@contoso.test` (the realm is the mail domain, upper-cased, as in Active Directory).
pub fn login_of(principal: &str) -> String {
    principal.to_lowercase()
}
