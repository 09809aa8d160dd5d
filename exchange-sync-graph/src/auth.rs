//! App-only OAuth2: the client-credentials grant against a configurable authority, with the
//! access token cached and refreshed before it expires.
//!
//! The application authenticates as itself (no user signs in): it posts its client id and secret
//! (or a client assertion signed with its certificate, see [`crate::certificate`])
//! to `{authority}/oauth2/v2.0/token` with the scope `https://graph.microsoft.com/.default` and
//! receives a bearer token carrying the application permissions an administrator granted. The
//! secret and the tokens are kept in types whose `Debug` prints `***`, and no log line or error
//! message contains them.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::certificate::ClientCertificate;
use crate::error::{ErrorContext, GraphError, Result};

/// The public cloud's authority host; the authority is `{host}/{tenant}`.
pub const PUBLIC_CLOUD_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";

/// The scope of an app-only token for Graph: every application permission granted to the app.
pub const GRAPH_DEFAULT_SCOPE: &str = "https://graph.microsoft.com/.default";

/// A token is refreshed when less than this remains of its lifetime (or half its lifetime for
/// short-lived tokens), so that no request leaves with a token about to expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// A secret string (client secret, access token) that never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// An application registration's credentials for the client-credentials grant.
#[derive(Debug, Clone)]
pub struct ClientCredentials {
    /// `{host}/{tenant id or domain}`, e.g. `https://login.microsoftonline.com/contoso.onmicrosoft.com`.
    pub authority: String,
    /// The application (client) id.
    pub client_id: String,
    /// The client secret (unused, and may be empty, when the client is given a certificate:
    /// [`crate::GraphClientBuilder::client_certificate`]).
    pub secret: Secret,
}

impl ClientCredentials {
    /// Credentials against the public cloud's authority for a tenant.
    pub fn public_cloud(tenant: &str, client_id: impl Into<String>, secret: Secret) -> Self {
        ClientCredentials {
            authority: format!("{PUBLIC_CLOUD_AUTHORITY_HOST}/{tenant}"),
            client_id: client_id.into(),
            secret,
        }
    }

    /// Credentials for an application that proves itself with a certificate, given to the
    /// client's builder ([`crate::GraphClientBuilder::client_certificate`]); `authority` is
    /// `{host}/{tenant}`.
    pub fn for_certificate(authority: impl Into<String>, client_id: impl Into<String>) -> Self {
        ClientCredentials {
            authority: authority.into(),
            client_id: client_id.into(),
            secret: Secret::new(String::new()),
        }
    }

    /// The token endpoint, `{authority}/oauth2/v2.0/token`: also the `aud` of client assertions.
    pub fn token_url(&self) -> String {
        format!("{}/oauth2/v2.0/token", self.authority.trim_end_matches('/'))
    }
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenFailure {
    error: Option<String>,
    error_description: Option<String>,
}

struct Cached {
    token: Secret,
    refresh_at: Instant,
}

/// Fetches and caches access tokens; shared by every clone of a client.
pub struct TokenSource {
    credentials: ClientCredentials,
    certificate: Option<ClientCertificate>,
    http: reqwest::Client,
    cached: Mutex<Option<Cached>>,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource").field("credentials", &self.credentials).finish_non_exhaustive()
    }
}

impl TokenSource {
    /// A source for these credentials, using this HTTP client.
    pub fn new(credentials: ClientCredentials, http: reqwest::Client) -> Self {
        TokenSource { credentials, certificate: None, http, cached: Mutex::new(None) }
    }

    /// Proves the application with a client assertion signed by `certificate` instead of the
    /// credentials' secret (see [`crate::certificate`]).
    pub fn with_certificate(mut self, certificate: ClientCertificate) -> Self {
        self.certificate = Some(certificate);
        self
    }

    /// A valid access token: the cached one while it has time left, otherwise a new one.
    /// Concurrent callers wait for one request to the authority instead of each sending one.
    pub async fn token(&self) -> Result<Secret> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let (token, lifetime) = self.fetch().await?;
        let margin = REFRESH_MARGIN.min(lifetime / 2);
        *cached = Some(Cached { token: token.clone(), refresh_at: Instant::now() + lifetime - margin });
        tracing::debug!(lifetime_secs = lifetime.as_secs(), "access token obtained");
        Ok(token)
    }

    /// Forgets `token` when it is the cached one (Graph refused it): the next call fetches anew.
    pub async fn invalidate(&self, token: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == token) {
            *cached = None;
        }
    }

    async fn fetch(&self) -> Result<(Secret, Duration)> {
        let context = || Box::new(ErrorContext { operation: Some("token"), ..Default::default() });
        let c = &self.credentials;
        let token_url = c.token_url();
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", c.client_id.clone()),
            ("scope", GRAPH_DEFAULT_SCOPE.into()),
        ];
        match &self.certificate {
            Some(certificate) => {
                let now = chrono::Utc::now().timestamp();
                let assertion = certificate
                    .assertion(&c.client_id, &token_url, now)
                    .map_err(|e| GraphError::Configuration(format!("client certificate: {e}")))?;
                form.push(("client_assertion_type", crate::certificate::ASSERTION_TYPE.into()));
                form.push(("client_assertion", assertion));
            }
            None => form.push(("client_secret", c.secret.expose().to_owned())),
        }
        let response = self.http.post(&token_url).form(&form).send().await.map_err(|e| {
            crate::client::network_error(e, false, ErrorContext { operation: Some("token"), ..Default::default() })
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| GraphError::Network {
            source: e,
            indeterminate: false,
            context: context(),
        })?;
        if !status.is_success() {
            if status.is_server_error() || status.as_u16() == 429 {
                return Err(GraphError::Http {
                    status: status.as_u16(),
                    code: "TokenEndpointUnavailable".into(),
                    message: "the authority could not issue a token".into(),
                    retry_after: None,
                    context: context(),
                });
            }
            let failure: TokenFailure =
                serde_json::from_slice(&body).unwrap_or(TokenFailure { error: None, error_description: None });
            return Err(GraphError::Token {
                error: failure.error.unwrap_or_else(|| format!("HTTP {status}")),
                description: failure.error_description.unwrap_or_default(),
                context: context(),
            });
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| GraphError::protocol(format!("the token answer is not valid JSON: {e}"), *context()))?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(3599).max(1));
        Ok((Secret(answer.access_token), lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c = ClientCredentials::public_cloud("contoso.test", "app", Secret::new("hunter2"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(c.token_url(), "https://login.microsoftonline.com/contoso.test/oauth2/v2.0/token");
    }
}
