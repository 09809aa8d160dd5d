//! Who is calling: Basic credentials, and the account an `t:ExchangeImpersonation` header
//! makes the request act as.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::soap::Fault;
use crate::tenant::Directory;

/// The address of the account named by an `Authorization: Basic ...` header value, if the
/// credentials are right.
pub fn basic_login(directory: &Directory, header: &str) -> Option<String> {
    let (scheme, encoded) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(B64.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    directory.authenticate(user, password).map(|a| a.address.clone())
}

/// The acting address and whether it is impersonated. Impersonating needs the
/// ApplicationImpersonation role (ErrorImpersonateUserDenied) and an existing target
/// (ErrorNonExistentMailbox); both answer as SOAP faults, as on Exchange.
pub fn acting_account(directory: &Directory, login: &str, impersonate: Option<&str>) -> Result<(String, bool), Fault> {
    let Some(target) = impersonate else {
        return Ok((login.to_string(), false));
    };
    if !directory.account(login).is_some_and(|a| a.impersonation) {
        return Err(Fault::refused(
            "ErrorImpersonateUserDenied",
            "The account does not have permission to impersonate the requested user.",
        ));
    }
    match directory.account(target) {
        Some(a) => Ok((a.address.clone(), true)),
        None => Err(Fault::refused(
            "ErrorNonExistentMailbox",
            format!("The SMTP address has no mailbox associated with it: {target}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmulatorConfig;

    fn directory() -> Directory {
        let config = EmulatorConfig { contacts: 0, trace_dir: None, ..Default::default() };
        crate::tenant::build(&config, std::sync::Arc::default()).0
    }

    #[test]
    fn basic_credentials() {
        let d = directory();
        let header = |s: &str| format!("Basic {}", B64.encode(s));
        assert_eq!(basic_login(&d, &header("alice:exchange-sync")).as_deref(), Some("alice@contoso.test"));
        assert_eq!(basic_login(&d, &header("alice:nope")), None);
        assert_eq!(basic_login(&d, &header("ghost:exchange-sync")), None);
        assert_eq!(basic_login(&d, "Bearer abc"), None);
        assert_eq!(basic_login(&d, "Basic !!!"), None);
    }

    #[test]
    fn impersonation_rules() {
        let d = directory();
        assert_eq!(acting_account(&d, "alice@contoso.test", None).unwrap(), ("alice@contoso.test".into(), false));
        assert_eq!(
            acting_account(&d, "sync-admin@contoso.test", Some("Bob@Contoso.test")).unwrap(),
            ("bob@contoso.test".into(), true)
        );
        assert_eq!(
            acting_account(&d, "alice@contoso.test", Some("bob@contoso.test")).unwrap_err().code,
            "ErrorImpersonateUserDenied"
        );
        assert_eq!(
            acting_account(&d, "sync-admin@contoso.test", Some("x@contoso.test")).unwrap_err().code,
            "ErrorNonExistentMailbox"
        );
    }
}
