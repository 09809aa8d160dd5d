//! What an admin can do about an error: the setting to check, the right to grant, the command to
//! run. Reports, `check` and the CLI show the hint under the error's message.
//!
//! Hints are read from the error's kind and the causes it carries (the EWS client's error behind
//! an unreachable server keeps the HTTP status or the TLS failure), with the configuration they
//! concern. When a server refuses Basic credentials, [`offered_schemes`] asks it (one request
//! without credentials) which schemes it offers, so that an NTLM-only server is named as such.
//! No hint ever holds a secret: it names where a password comes from, never the password.

use std::time::Duration;

use exchange_sync_core::ErrorKind;
use exchange_sync_ews::{EwsError, UnreachableCause};

use crate::config::{Auth, Config, Connection, Endpoint, GroupConfig, HubFolder, Secret};

/// What a hint may refer to: the configuration, and the group the error happened in.
#[derive(Clone, Copy)]
pub struct HintContext<'a> {
    /// The configuration.
    pub config: &'a Config,
    /// The group, when the error happened in one.
    pub group: Option<&'a GroupConfig>,
    /// The connection's id, when the error names it and no group does.
    pub connection: Option<&'a str>,
}

impl<'a> HintContext<'a> {
    /// A context for an error of `group`.
    pub fn group(config: &'a Config, group: &'a GroupConfig) -> Self {
        HintContext { config, group: Some(group), connection: None }
    }

    /// A context for an error outside any group.
    pub fn global(config: &'a Config) -> Self {
        HintContext { config, group: None, connection: None }
    }

    fn connection(&self) -> Option<(usize, &'a Connection)> {
        let id = self.group.map(|g| g.connection.as_str()).or(self.connection).or_else(|| {
            // One connection: errors outside a group concern it.
            (self.config.connections.len() == 1).then(|| self.config.connections[0].id.as_str())
        })?;
        self.config.connections.iter().enumerate().find(|(_, c)| c.id == id)
    }

    fn group_index(&self) -> Option<usize> {
        let g = self.group?;
        self.config.groups.iter().position(|c| c.id == g.id)
    }
}

/// The EWS client's error among an error's causes, if any.
pub fn ews_cause<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e EwsError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(ews) = e.downcast_ref::<EwsError>() {
            return Some(ews);
        }
        current = e.source();
    }
    None
}

/// Where a connection's password comes from, in words (never the password).
fn secret_source(secret: &Secret) -> String {
    match secret {
        Secret::Env(name) => format!("environment variable {name}"),
        Secret::File(path) => format!("file {}", path.display()),
        Secret::Inline(_) => "the configuration file".to_owned(),
    }
}

fn url_of(connection: &Connection) -> String {
    match &connection.endpoint {
        Endpoint::Url(url) => url.clone(),
        Endpoint::Autodiscover(address) => format!("the URL Autodiscover gives for {address}"),
        Endpoint::Graph(url) => url.clone(),
    }
}

/// Why a server could not be reached.
enum Cause {
    NoEndpoint,
    Untrusted,
    Refused,
    UnknownHost,
    Handshake,
}

/// The hint for an error of kind `kind` (its message and causes in `error`), without asking any
/// server.
pub fn hint(error: &(dyn std::error::Error + 'static), kind: ErrorKind, ctx: &HintContext<'_>) -> Option<String> {
    let message = crate::report::message_with_causes(error);
    hint_for(kind, &message, ews_cause(error), ctx)
}

/// The hint for an error given by its kind, its full message and its EWS cause.
pub fn hint_for(kind: ErrorKind, message: &str, ews: Option<&EwsError>, ctx: &HintContext<'_>) -> Option<String> {
    let conn = ctx.connection();
    let key = conn.map(|(i, c)| (format!("connections.{}", c.id), i));
    let key_name = key.as_ref().map_or_else(|| "the connection".to_owned(), |(k, _)| k.clone());
    // The EWS client's error says why; read back from a report (the cause is gone), the message does.
    let cause = match ews {
        Some(EwsError::Http { status: 404, .. }) => Some(Cause::NoEndpoint),
        Some(EwsError::Unreachable { cause, .. }) => Some(match cause {
            UnreachableCause::UntrustedCertificate => Cause::Untrusted,
            UnreachableCause::ConnectionRefused => Cause::Refused,
            UnreachableCause::UnknownHost => Cause::UnknownHost,
            _ => Cause::Handshake,
        }),
        _ if kind == ErrorKind::Unreachable => {
            let m = message.to_lowercase();
            if m.contains("http status 404") {
                Some(Cause::NoEndpoint)
            } else if m.contains("certificate") {
                Some(Cause::Untrusted)
            } else if m.contains("connection refused") {
                Some(Cause::Refused)
            } else if m.contains("resolve") || m.contains("unknown host") {
                Some(Cause::UnknownHost)
            } else if m.contains("tls") || m.contains("handshake") {
                Some(Cause::Handshake)
            } else {
                None
            }
        }
        _ => None,
    };
    if let Some(cause) = cause {
        let url = conn.map_or_else(|| "the EWS URL".to_owned(), |(_, c)| url_of(c));
        return Some(match cause {
            Cause::NoEndpoint => format!(
                "the server answers, but has no EWS endpoint at {url} (HTTP 404): check {key_name}.url; the EWS \
                 endpoint of Exchange is https://<server>/EWS/Exchange.asmx"
            ),
            Cause::Untrusted => format!(
                "the server's TLS certificate is not trusted. If it comes from your organisation's own CA, give \
                 that CA's certificate (PEM) as {key_name}.tls.ca_file = \"/etc/exchange-sync/internal-ca.pem\"; if \
                 the name does not match, use the name the certificate is issued to in {key_name}.url"
            ),
            Cause::Refused => format!(
                "nothing accepts connections at {url}: check the host and port in {key_name}.url and that the \
                 Exchange server (IIS) runs and is not blocked by a firewall"
            ),
            Cause::UnknownHost => {
                format!("the host name in {url} does not resolve: check {key_name}.url and the DNS of this machine")
            }
            Cause::Handshake => format!(
                "the TLS handshake with {url} failed: check that {key_name}.url uses https:// for a TLS port (and \
                 http:// for a plain one), and the server's TLS settings"
            ),
        });
    }
    match kind {
        ErrorKind::Auth => {
            let (_, c) = conn?;
            let account = match &c.auth {
                Auth::Basic { username, .. } | Auth::Ntlm { username, .. } | Auth::Negotiate { username, .. } => {
                    Some(username.as_str())
                }
                _ => None,
            };
            let m = message;
            if m.contains("ErrorImpersonateUserDenied") || m.contains("ErrorImpersonationDenied") {
                let who = account.unwrap_or("the service account");
                return Some(format!(
                    "{who} may not impersonate this mailbox: grant it the ApplicationImpersonation role (Exchange \
                     Management Shell: New-ManagementRoleAssignment -Name exchange-sync -Role ApplicationImpersonation \
                     -User {who}), or set {key_name}.impersonation = false and give it delegate access"
                ));
            }
            if m.contains("ErrorNonExistentMailbox") || m.contains("ErrorMailboxNotFound") {
                return Some(
                    "Exchange has no mailbox with this address: check the member's mailbox in the configuration (or \
                     the distribution group's membership); the rest of the group syncs without it"
                        .to_owned(),
                );
            }
            if m.contains("ErrorAccessDenied") || m.contains("ErrorNoPublicFolderReplicaAvailable") {
                let who = account.unwrap_or("the service account");
                return Some(format!(
                    "{who} lacks rights on this folder: give it (or the impersonated user) permission to read and \
                     edit items there (public folders: Add-PublicFolderClientPermission ... -AccessRights Editor)"
                ));
            }
            if m.contains("server requires channel binding") {
                return Some(format!(
                    "the server requires Extended Protection (channel binding) and the connection sends NTLM without \
                     it: remove {key_name}.tls.channel_binding = false; behind a TLS-terminating proxy, let the proxy \
                     pass TLS through to Exchange instead"
                ));
            }
            // Rejected credentials.
            let source = c.auth.secret().map(secret_source).unwrap_or_else(|| "nowhere".to_owned());
            Some(match (&c.auth, account) {
                (Auth::OAuth2 { .. }, _) => format!(
                    "the server refused the OAuth2 token (from {source}): renew it, and check that it is issued for \
                     EWS of this tenant"
                ),
                (Auth::ClientSecret { client_id, .. }, _) => format!(
                    "Microsoft Graph refused application {client_id} (secret from {source}): check the client secret \
                     and its expiry, and that the application has the Contacts.ReadWrite application permission with \
                     admin consent (an application access policy may also limit the mailboxes it reaches)"
                ),
                (Auth::ClientCertificate { client_id, certificate_file, .. }, _) => format!(
                    "Microsoft Graph refused application {client_id} (certificate {}): check that this certificate is \
                     uploaded to the app registration (Certificates & secrets) and not expired, that the machine's \
                     clock is right, and that the application has the Contacts.ReadWrite application permission with \
                     admin consent",
                    certificate_file.display()
                ),
                (Auth::Negotiate { .. }, Some(account)) => format!(
                    "Kerberos for {account} ({key_name}.username) failed: give the service a ticket (kinit, or the \
                     account's keytab in KRB5_CLIENT_KTNAME in its environment), check that the KDC knows the \
                     service principal HTTP/<EWS host> and that the clocks agree; with a password (password_env or \
                     password_file) NTLM is used where the server offers only NTLM"
                ),
                (Auth::None, _) => format!(
                    "the server asks for credentials: set {key_name}.auth (ntlm is the usual on-premises choice) with \
                     username and password_env or password_file"
                ),
                (_, Some(account)) => format!(
                    "the server refused the credentials of {account} ({key_name}.username, password from {source}): \
                     check the password, and that the account is neither locked nor expired"
                ),
                _ => format!("the server refused the credentials of {key_name}"),
            })
        }
        ErrorKind::State => {
            let path = match &ctx.config.service.state {
                crate::config::StateLocation::Sqlite(p) => p.display().to_string(),
                crate::config::StateLocation::Memory => "memory".to_owned(),
                crate::config::StateLocation::Postgres(p) => p.shown_url(),
            };
            let m = message.to_lowercase();
            if m.contains("readonly") || m.contains("read-only") || m.contains("permission denied") {
                Some(format!(
                    "the service account must be able to write the state file {path}, the files beside it (-wal, \
                     -shm, .lock) and their directory"
                ))
            } else if m.contains("malformed") || m.contains("not a database") || m.contains("unreadable") {
                Some(format!(
                    "the state file {path} is damaged: restore it from a backup, or move it away to start over (the \
                     first run then matches what every folder holds by origin stamp: nothing is duplicated)"
                ))
            } else if m.contains("full") || m.contains("no space") {
                Some(format!("the file system holding {path} is full: free space there"))
            } else if m.contains("in use by process") {
                Some(
                    "one process writes a state at a time: stop the other one, or work beside it (status, \
                     conflicts, plan and check read; confirm and resync reach it through the state)"
                        .to_owned(),
                )
            } else if m.contains("older than") && m.contains("does not migrate") {
                Some(
                    "start the service (or `exchange-sync run --once`) once: it brings the state up to date".to_owned(),
                )
            } else {
                None
            }
        }
        ErrorKind::NotFound => {
            let g = ctx.group?;
            let i = ctx.group_index()?;
            match &g.hub {
                HubFolder::PublicFolder(_) if message.contains("public folder") => Some(format!(
                    "check groups[{i}].hub (public_folder = \"...\" is the path from the root, / between levels)"
                )),
                _ => None,
            }
        }
        ErrorKind::Throttled => Some(
            "the server asked to back off; syncing resumes when the back-off ends. If this persists, raise the EWS \
             budget of the throttling policy of the service account"
                .to_owned(),
        ),
        ErrorKind::MassDelete => ctx.group.map(|g| {
            format!(
                "check the folder, then confirm: exchange-sync confirm --group {} (or exchange-sync run --once \
                 --allow-mass-delete when no service runs)",
                g.id
            )
        }),
        _ => None,
    }
}

/// The hint for an error, asking the server which authentication schemes it offers when it
/// refused Basic or NTLM credentials (one request without credentials): an NTLM-only server is
/// named as such.
pub async fn hint_with_probe(
    error: &(dyn std::error::Error + Send + Sync + 'static),
    kind: ErrorKind,
    ctx: &HintContext<'_>,
) -> Option<String> {
    let base = hint(error, kind, ctx);
    let message = crate::report::message_with_causes(error);
    if kind != ErrorKind::Auth || !message.contains("authentication rejected") {
        return base;
    }
    let (_, c) = ctx.connection()?;
    let ours = match &c.auth {
        Auth::Basic { .. } => "Basic",
        Auth::Ntlm { .. } => "NTLM",
        _ => return base,
    };
    let Endpoint::Url(url) = &c.endpoint else { return base };
    let offered = offered_schemes(url, c).await;
    if offered.is_empty() || offered.iter().any(|s| s.eq_ignore_ascii_case(ours)) {
        return base;
    }
    let key = format!("connections.{}.auth", c.id);
    let listed = offered.join(", ");
    let ntlm = offered.iter().any(|s| s.eq_ignore_ascii_case("NTLM") || s.eq_ignore_ascii_case("Negotiate"));
    let _ = base;
    Some(if ntlm {
        format!(
            "the server does not accept {ours}: it offers {listed}; set {key} = \"ntlm\" (same username and password)"
        )
    } else {
        format!("the server does not accept {ours}: it offers {listed}")
    })
}

/// The authentication schemes a server offers (`WWW-Authenticate` of a request without
/// credentials), e.g. `["NTLM", "Negotiate"]`; empty when it cannot be asked.
pub async fn offered_schemes(url: &str, connection: &Connection) -> Vec<String> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .danger_accept_invalid_certs(connection.tls.insecure);
    if let Some(ca) = &connection.tls.ca_file
        && let Ok(pem) = std::fs::read(ca)
        && let Ok(certs) = reqwest::Certificate::from_pem_bundle(&pem)
    {
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    let Ok(client) = builder.build() else { return Vec::new() };
    let response = client.post(url).header("Content-Type", "text/xml; charset=utf-8").body("").send().await;
    let Ok(response) = response else { return Vec::new() };
    let mut schemes: Vec<String> = response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_whitespace().next())
        .map(|s| s.trim_end_matches(',').to_owned())
        .collect();
    schemes.dedup();
    schemes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Connection, HubFolder};

    fn config() -> Config {
        let auth = Auth::Basic { username: "sync-admin@contoso.test".into(), password: Secret::Env("PW".into()) };
        let mut config = Config {
            connections: vec![Connection::new("lab", "https://mail.contoso.test/EWS/Exchange.asmx", auth)],
            ..Config::default()
        };
        config.groups.push(GroupConfig::new("g", "lab", HubFolder::PublicFolder("Company Contacts".into())));
        config
    }

    #[test]
    fn a_refused_password_names_the_account_and_where_the_password_comes_from() {
        let config = config();
        let ctx = HintContext::group(&config, &config.groups[0]);
        let hint = hint_for(ErrorKind::Auth, "FindFolder: authentication rejected", None, &ctx).unwrap();
        assert!(hint.contains("sync-admin@contoso.test"), "{hint}");
        assert!(hint.contains("environment variable PW"), "{hint}");
        assert!(hint.contains("connections.lab.username"), "{hint}");
    }

    #[test]
    fn impersonation_and_state_hints_say_what_to_do() {
        let config = config();
        let ctx = HintContext::group(&config, &config.groups[0]);
        let h = hint_for(ErrorKind::Auth, "ErrorImpersonateUserDenied: no", None, &ctx).unwrap();
        assert!(h.contains("ApplicationImpersonation"), "{h}");
        let refused = "GetFolder: authentication rejected: server requires channel binding (Extended Protection) for \
                       HTTP/mail.contoso.test";
        let h = hint_for(ErrorKind::Auth, refused, None, &ctx).unwrap();
        assert!(h.contains("connections.lab.tls.channel_binding"), "{h}");
        let h = hint_for(ErrorKind::State, "state store: x: attempt to write a readonly database", None, &ctx).unwrap();
        assert!(h.contains("must be able to write"), "{h}");
        let h = hint_for(ErrorKind::State, "state store: file is not a database", None, &ctx).unwrap();
        assert!(h.contains("damaged"), "{h}");
    }
}
