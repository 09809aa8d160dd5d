//! SOAP Autodiscover `GetUserSettings`, enough for clients to find the EWS URL and the public
//! folder mailbox.

use crate::emulator::Shared;
use crate::store::public_folder_mailbox;
use crate::xml::{NS_SOAP, escape};

/// Autodiscover namespace.
pub const NS_AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";

/// Answers a GetUserSettings request; Err(message) when the request is not one.
pub fn get_user_settings(shared: &Shared, body: &[u8]) -> Result<String, String> {
    let root = crate::xml::parse(body).map_err(|e| e.to_string())?;
    if root.name != "Envelope" || root.ns != NS_SOAP {
        return Err("not a SOAP 1.1 envelope".into());
    }
    let op = root
        .child("Body")
        .and_then(|b| b.children.first())
        .filter(|o| o.name == "GetUserSettingsRequestMessage" && o.ns == NS_AUTODISCOVER)
        .ok_or("only GetUserSettings is supported")?;
    let request = op.child("Request").ok_or("missing Request")?;
    let users: Vec<String> = request
        .child("Users")
        .map(|u| u.children.iter().filter_map(|u| u.child_text("Mailbox")).map(str::to_string).collect())
        .unwrap_or_default();
    let wanted: Vec<String> = request
        .child("RequestedSettings")
        .map(|s| s.children.iter().map(|c| c.text.trim().to_string()).collect())
        .unwrap_or_default();
    let endpoint = shared.endpoint.clone();
    let (major, minor, build, _, _) = shared.config.server_version.version_info();
    let mut out = String::new();
    out.push_str(&format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{NS_SOAP}" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:Action s:mustUnderstand="1">http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettingsResponse</a:Action><h:ServerVersionInfo xmlns:h="{NS_AUTODISCOVER}" xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><h:MajorVersion>{major}</h:MajorVersion><h:MinorVersion>{minor}</h:MinorVersion><h:MajorBuildNumber>{build}</h:MajorBuildNumber><h:MinorBuildNumber>0</h:MinorBuildNumber><h:Version>Exchange2013</h:Version></h:ServerVersionInfo></s:Header><s:Body><GetUserSettingsResponseMessage xmlns="{NS_AUTODISCOVER}"><Response xmlns:i="http://www.w3.org/2001/XMLSchema-instance"><ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses>"#
    ));
    for user in users {
        match shared.directory.account(&user) {
            Some(account) => {
                let settings: Vec<(&str, String)> = vec![
                    ("UserDisplayName", account.display_name.clone()),
                    ("UserDN", format!("/o=Contoso/ou=Exchange Administrative Group/cn=Recipients/cn={}", account.address)),
                    ("AutoDiscoverSMTPAddress", account.address.clone()),
                    ("InternalEwsUrl", endpoint.clone()),
                    ("ExternalEwsUrl", endpoint.clone()),
                    ("EwsSupportedSchemas", shared.config.server_version.name().to_string()),
                    ("CasVersion", format!("{major}.{minor:02}.{build}.000")),
                    ("PublicFolderInformation", public_folder_mailbox(&shared.directory.domain)),
                ];
                out.push_str("<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><RedirectTarget i:nil=\"true\"/><UserSettingErrors/><UserSettings>");
                for (name, value) in settings {
                    if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
                        continue;
                    }
                    out.push_str(&format!(
                        "<UserSetting i:type=\"StringSetting\"><Name>{name}</Name><Value>{}</Value></UserSetting>",
                        escape(&value)
                    ));
                }
                out.push_str("</UserSettings></UserResponse>");
            }
            None => out.push_str(
                "<UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user.</ErrorMessage><RedirectTarget i:nil=\"true\"/><UserSettingErrors/><UserSettings/></UserResponse>",
            ),
        }
    }
    out.push_str("</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>");
    Ok(out)
}
