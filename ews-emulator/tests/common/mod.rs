//! Shared helpers of the integration tests: start an emulator (tracing into `$EWS_TRACE_DIR`
//! when set) and speak SOAP to it over real HTTP.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use ews_emulator::xml::{Element, parse};
use ews_emulator::{Emulator, EmulatorConfig, RunningEmulator};

pub const PASSWORD: &str = "exchange-sync";

/// Starts an emulator with `config` (whose `Default` takes the trace dir from `EWS_TRACE_DIR`).
pub async fn start(config: EmulatorConfig) -> RunningEmulator {
    Emulator::start(config).await.expect("emulator starts")
}

/// Starts the default demo tenant with few contacts (fast).
pub async fn start_default() -> RunningEmulator {
    start(EmulatorConfig { contacts: 25, ..Default::default() }).await
}

/// A SOAP client for one login.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub user: String,
    pub version: String,
    pub impersonate: Option<String>,
}

/// An answer: HTTP status and parsed envelope.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub text: String,
    pub doc: Element,
}

impl Answer {
    /// The operation response element (first child of Body).
    pub fn body(&self) -> &Element {
        &self.doc.child("Body").expect("Body").children[0]
    }

    /// The response messages.
    pub fn messages(&self) -> Vec<&Element> {
        self.body().child("ResponseMessages").map(|r| r.children.iter().collect()).unwrap_or_default()
    }

    /// Response code of message `i`.
    pub fn code(&self, i: usize) -> String {
        self.messages()[i].child_text("ResponseCode").unwrap_or("").to_string()
    }

    /// Fault code (after the prefix), if this is a fault.
    pub fn fault_code(&self) -> Option<String> {
        let f = self.body();
        (f.name == "Fault")
            .then(|| f.child_text("faultcode").unwrap_or("").rsplit(':').next().unwrap_or("").to_string())
    }
}

impl Client {
    pub fn new(emu: &RunningEmulator, user: &str) -> Self {
        Client {
            http: reqwest::Client::new(),
            url: emu.url().to_string(),
            user: user.to_string(),
            version: "Exchange2016".into(),
            impersonate: None,
        }
    }

    pub fn impersonating(mut self, who: &str) -> Self {
        self.impersonate = Some(who.to_string());
        self
    }

    pub fn envelope(&self, body: &str) -> String {
        let imp = match &self.impersonate {
            Some(who) => format!(
                "<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{who}</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>"
            ),
            None => String::new(),
        };
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><soap:Header><t:RequestServerVersion Version="{}"/>{imp}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#,
            self.version
        )
    }

    pub async fn raw(&self, payload: impl Into<reqwest::Body>) -> reqwest::Response {
        self.http
            .post(&self.url)
            .basic_auth(&self.user, Some(PASSWORD))
            .header("Content-Type", "text/xml; charset=utf-8")
            .body(payload)
            .send()
            .await
            .expect("HTTP round trip")
    }

    pub async fn call(&self, body: &str) -> Answer {
        let resp = self.raw(self.envelope(body)).await;
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let doc = parse(text.as_bytes()).unwrap_or_else(|e| panic!("unparsable answer ({e}): {text}"));
        Answer { status, text, doc }
    }
}

/// Finds the first descendant with this local name.
pub fn find<'a>(e: &'a Element, name: &str) -> Option<&'a Element> {
    if e.name == name {
        return Some(e);
    }
    e.children.iter().find_map(|c| find(c, name))
}

/// Every descendant with this local name.
pub fn find_all<'a>(e: &'a Element, name: &str) -> Vec<&'a Element> {
    let mut v = Vec::new();
    fn walk<'a>(e: &'a Element, name: &str, v: &mut Vec<&'a Element>) {
        if e.name == name {
            v.push(e);
        }
        for c in &e.children {
            walk(c, name, v);
        }
    }
    walk(e, name, &mut v);
    v
}

/// `t:DistinguishedFolderId`, optionally in another mailbox.
pub fn dfid(name: &str) -> String {
    format!(r#"<t:DistinguishedFolderId Id="{name}"/>"#)
}

/// A contact with indexed fields, an extended property and a body, in schema order.
pub fn contact_xml(given: &str, surname: &str, origin: &str) -> String {
    format!(
        r#"<t:Contact><t:Subject>{given} {surname}</t:Subject><t:Body BodyType="Text">Notes about {given}</t:Body><t:Categories><t:String>Customer</t:String></t:Categories><t:ExtendedProperty><t:ExtendedFieldURI PropertySetId="c11ff724-aa03-4555-9952-8fa248a11c3e" PropertyName="OriginStamp" PropertyType="String"/><t:Value>{origin}</t:Value></t:ExtendedProperty><t:FileAs>{surname}, {given}</t:FileAs><t:DisplayName>{given} {surname}</t:DisplayName><t:GivenName>{given}</t:GivenName><t:CompanyName>Fabrikam</t:CompanyName><t:EmailAddresses><t:Entry Key="EmailAddress1">{given}@fabrikam.example</t:Entry><t:Entry Key="EmailAddress2">{given}@home.example</t:Entry></t:EmailAddresses><t:PhysicalAddresses><t:Entry Key="Business"><t:Street>Main 1</t:Street><t:City>Zürich</t:City><t:CountryOrRegion>Switzerland</t:CountryOrRegion><t:PostalCode>8001</t:PostalCode></t:Entry></t:PhysicalAddresses><t:PhoneNumbers><t:Entry Key="BusinessPhone">+41 44 000 00 00</t:Entry><t:Entry Key="MobilePhone">+41 79 000 00 00</t:Entry></t:PhoneNumbers><t:ImAddresses><t:Entry Key="ImAddress1">{given}@im.example</t:Entry></t:ImAddresses><t:JobTitle>Buyer</t:JobTitle><t:Surname>{surname}</t:Surname></t:Contact>"#
    )
}

/// The origin-stamp extended field URI used by `contact_xml`.
pub const ORIGIN_URI: &str = r#"<t:ExtendedFieldURI PropertySetId="c11ff724-aa03-4555-9952-8fa248a11c3e" PropertyName="OriginStamp" PropertyType="String"/>"#;

/// Creates items in a folder; returns (id, change key) per item.
pub async fn create(c: &Client, folder: &str, items: &str) -> Vec<(String, String)> {
    let a = c
        .call(&format!(
            r#"<m:CreateItem MessageDisposition="SaveOnly" SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>{folder}</m:SavedItemFolderId><m:Items>{items}</m:Items></m:CreateItem>"#
        ))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.messages()
        .iter()
        .map(|m| {
            assert_eq!(m.child_text("ResponseCode"), Some("NoError"), "{}", a.text);
            let id = find(m, "ItemId").expect("ItemId");
            (id.attr("Id").unwrap().to_string(), id.attr("ChangeKey").unwrap().to_string())
        })
        .collect()
}

/// GetItem with a shape (inner XML of ItemShape) for ids.
pub async fn get(c: &Client, shape: &str, ids: &[&str]) -> Answer {
    let ids: String = ids.iter().map(|i| format!(r#"<t:ItemId Id="{i}"/>"#)).collect();
    c.call(&format!(r#"<m:GetItem><m:ItemShape>{shape}</m:ItemShape><m:ItemIds>{ids}</m:ItemIds></m:GetItem>"#)).await
}

/// Id of a public folder below the public root, by display name.
pub async fn find_folder_id(c: &Client, name: &str) -> String {
    let a = c
        .call(r#"<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:ParentFolderIds><t:DistinguishedFolderId Id="publicfoldersroot"/></m:ParentFolderIds></m:FindFolder>"#)
        .await;
    find_all(&a.doc, "DisplayName")
        .into_iter()
        .zip(find_all(&a.doc, "FolderId"))
        .find(|(n, _)| n.text == name)
        .map(|(_, id)| id.attr("Id").unwrap().to_string())
        .expect("public folder exists")
}
