//! SOAP Autodiscover (`GetUserSettings`): from an e-mail address to the EWS URL and the public folder
//! mailbox that Exchange 2013+ needs in `X-AnchorMailbox` / `X-PublicFolderMailbox`.

use std::collections::HashMap;

use crate::auth::Credentials;
use crate::error::{ErrorContext, EwsError, Result};
use crate::transport::{Routing, Transport, TransportConfig};
use crate::xml::{Element, XmlWriter, parse};

const NS_AUTODISCOVER: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
const NS_ADDRESSING: &str = "http://www.w3.org/2005/08/addressing";

/// The settings a sync needs.
pub const SYNC_SETTINGS: [&str; 5] =
    ["ExternalEwsUrl", "InternalEwsUrl", "PublicFolderInformation", "UserDisplayName", "AutoDiscoverSMTPAddress"];

/// The settings Autodiscover returned for one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSettings {
    /// Setting name to value.
    pub settings: HashMap<String, String>,
}

impl UserSettings {
    /// The EWS URL to use: the internal one if offered (on-premises tools run inside), else external.
    pub fn ews_url(&self) -> Option<&str> {
        self.settings.get("InternalEwsUrl").or_else(|| self.settings.get("ExternalEwsUrl")).map(String::as_str)
    }

    /// The public folder (hierarchy) mailbox for routing headers.
    pub fn public_folder_mailbox(&self) -> Option<&str> {
        self.settings.get("PublicFolderInformation").map(String::as_str)
    }
}

fn request(url: &str, email: &str, settings: &[&str]) -> String {
    let mut w = XmlWriter::new();
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    w.open(
        "soap:Envelope",
        &[("xmlns:soap", crate::xml::NS_SOAP), ("xmlns:a", NS_AUTODISCOVER), ("xmlns:wsa", NS_ADDRESSING)],
    );
    w.open("soap:Header", &[])
        .leaf("a:RequestedServerVersion", "Exchange2013")
        .leaf("wsa:Action", "http://schemas.microsoft.com/exchange/2010/Autodiscover/Autodiscover/GetUserSettings")
        .leaf("wsa:To", url)
        .close("soap:Header");
    w.open("soap:Body", &[]).open("a:GetUserSettingsRequestMessage", &[]).open("a:Request", &[]);
    w.open("a:Users", &[]).open("a:User", &[]).leaf("a:Mailbox", email).close("a:User").close("a:Users");
    w.open("a:RequestedSettings", &[]);
    for s in settings {
        w.leaf("a:Setting", s);
    }
    w.close("a:RequestedSettings").close("a:Request").close("a:GetUserSettingsRequestMessage");
    w.close("soap:Body").close("soap:Envelope");
    w.finish()
}

fn error(code: &str, message: &str) -> EwsError {
    EwsError::Response {
        code: code.to_owned(),
        message: message.to_owned(),
        inner_code: None,
        back_off: None,
        context: Box::new(ErrorContext::operation("GetUserSettings")),
    }
}

/// Parses a GetUserSettings response for its first user.
pub fn parse_user_settings(root: &Element) -> Result<UserSettings> {
    let response = root
        .path(&["Body", "GetUserSettingsResponseMessage", "Response"])
        .ok_or_else(|| EwsError::protocol("GetUserSettings", "no Response"))?;
    let code = response.child_text("ErrorCode").unwrap_or("NoError");
    if code != "NoError" {
        return Err(error(code, response.child_text("ErrorMessage").unwrap_or_default()));
    }
    let user = response
        .path(&["UserResponses", "UserResponse"])
        .ok_or_else(|| EwsError::protocol("GetUserSettings", "no UserResponse"))?;
    let code = user.child_text("ErrorCode").unwrap_or("NoError");
    if code != "NoError" {
        return Err(error(code, user.child_text("ErrorMessage").unwrap_or_default()));
    }
    let settings = user
        .child("UserSettings")
        .map(|s| {
            s.children_named("UserSetting")
                .filter_map(|u| Some((u.child_text("Name")?.to_owned(), u.child_text("Value")?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(UserSettings { settings })
}

/// Asks the SOAP Autodiscover service (`https://host/autodiscover/autodiscover.svc`) for a user's
/// settings.
pub async fn get_user_settings(
    autodiscover_url: &str,
    credentials: Credentials,
    config: &TransportConfig,
    email: &str,
    settings: &[&str],
) -> Result<UserSettings> {
    // Autodiscover documents are not EWS documents: they are not traced for EWS schema validation.
    let config = TransportConfig { trace_dir: None, ..config.clone() };
    let transport = Transport::new(autodiscover_url, credentials, &config)?;
    let doc = request(autodiscover_url, email, settings);
    let (status, body, _) = transport.send_and_read("GetUserSettings", &Routing::default(), &doc, false).await?;
    let root = parse(&body, config.parse_limits).map_err(|e| EwsError::protocol("GetUserSettings", e.to_string()))?;
    if let Some(fault) = root.path(&["Body", "Fault"]) {
        return Err(error("SoapFault", fault.child_text("faultstring").unwrap_or_default()));
    }
    if status != 200 {
        return Err(EwsError::Http {
            status,
            retry_after: None,
            context: Box::new(ErrorContext::operation("GetUserSettings")),
        });
    }
    parse_user_settings(&root)
}
