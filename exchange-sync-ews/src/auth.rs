//! Credentials: how requests authenticate. Secrets stay inside this module: `Debug` is redacted and
//! nothing here is ever logged or put into an error.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;

/// Supplies OAuth2 bearer tokens (e.g. from MSAL or a client-credentials flow the caller runs).
///
/// The client asks with `force_refresh = false` before each request and with `true` after a 401, so a
/// provider can cache tokens and only fetch a new one when the server rejected the cached one.
#[async_trait]
pub trait TokenProvider: Send + Sync {
    /// A current access token.
    async fn token(&self, force_refresh: bool) -> Result<String>;
}

/// How the client authenticates.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// HTTP Basic (over TLS only in production).
    Basic {
        /// The user name (UPN or DOMAIN\user).
        username: String,
        /// The password.
        password: String,
    },
    /// NTLM (NTLMv2 only), the usual choice of on-premises Exchange. NTLM authenticates a
    /// connection, not a request: the transport runs the handshake on each connection it opens and
    /// keeps each connection to one request at a time.
    Ntlm {
        /// `DOMAIN\user`, or a UPN (`user@domain`) sent with an empty domain.
        username: String,
        /// The password (only a hash of it is ever computed with; it is never sent).
        password: String,
    },
    /// Negotiate (SPNEGO, RFC 4559) with Kerberos, as Exchange SE prefers: the ticket of
    /// `username` (a Kerberos principal, `sync-admin@CONTOSO.COM`) from the system's credential
    /// cache or client keytab (`KRB5CCNAME`, `KRB5_CLIENT_KTNAME`). With a password, NTLM is the
    /// fallback when the server offers only NTLM. Needs the `kerberos` cargo feature.
    Negotiate {
        /// The Kerberos principal (`user@REALM`); also the NTLM login of the fallback.
        username: String,
        /// The password for the NTLM fallback; without it a server offering only NTLM is an error.
        password: Option<String>,
    },
    /// OAuth2 bearer tokens from a provider, refreshed on 401.
    Bearer(Arc<dyn TokenProvider>),
    /// No authentication (tests, or a proxy that authenticates).
    Anonymous,
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Basic { username: username.into(), password: password.into() }
    }

    /// NTLM credentials (`DOMAIN\user` or a UPN).
    pub fn ntlm(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self::Ntlm { username: username.into(), password: password.into() }
    }

    /// Negotiate/Kerberos credentials for a principal, with an optional password for the NTLM
    /// fallback.
    pub fn negotiate(username: impl Into<String>, password: Option<String>) -> Self {
        Self::Negotiate { username: username.into(), password }
    }

    /// Bearer tokens from a provider.
    pub fn bearer(provider: Arc<dyn TokenProvider>) -> Self {
        Self::Bearer(provider)
    }

    /// The user name, for logs and contexts (never the secret).
    pub fn username(&self) -> Option<&str> {
        match self {
            Self::Basic { username, .. } | Self::Ntlm { username, .. } | Self::Negotiate { username, .. } => {
                Some(username)
            }
            _ => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"<redacted>").finish()
            }
            Self::Ntlm { username, .. } => {
                f.debug_struct("Ntlm").field("username", username).field("password", &"<redacted>").finish()
            }
            Self::Negotiate { username, password } => f
                .debug_struct("Negotiate")
                .field("username", username)
                .field("password", &password.as_ref().map(|_| "<redacted>"))
                .finish(),
            Self::Bearer(_) => f.write_str("Bearer(<token provider>)"),
            Self::Anonymous => f.write_str("Anonymous"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_password() {
        let c = Credentials::basic("sync-admin@contoso.test", "exchange-sync");
        let s = format!("{c:?}");
        assert!(s.contains("sync-admin") && !s.contains("exchange-sync\""), "{s}");
        assert!(!s.contains("\"exchange-sync\""));
        let n = format!("{:?}", Credentials::ntlm("CONTOSO\\sync-admin", "s3cret-pw"));
        assert!(n.contains("Ntlm") && n.contains("sync-admin") && !n.contains("s3cret-pw"), "{n}");
    }
}
