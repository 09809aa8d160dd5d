//! The SOAP 1.1 envelope: writing request envelopes with the EWS headers, reading response envelopes
//! (faults, `ServerVersionInfo`, per-message `ResponseClass`).

use std::time::Duration;

use crate::error::{ErrorContext, EwsError, Result};
use crate::version::ExchangeVersion;
use crate::xml::{Element, NS_MESSAGES, NS_SOAP, NS_TYPES, ParseLimits, XmlWriter, parse};

/// Whom the service account acts as (`t:ExchangeImpersonation`), which needs the
/// ApplicationImpersonation role. Throttling is then charged to the target mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Impersonation {
    /// The primary SMTP address of the mailbox.
    PrimarySmtpAddress(String),
    /// Any SMTP address of the mailbox.
    SmtpAddress(String),
    /// The security identifier of the account.
    Sid(String),
    /// The user principal name.
    PrincipalName(String),
}

impl Impersonation {
    /// The address or name identifying the mailbox (for logs, routing and per-mailbox limits).
    pub fn mailbox(&self) -> &str {
        match self {
            Self::PrimarySmtpAddress(s) | Self::SmtpAddress(s) | Self::Sid(s) | Self::PrincipalName(s) => s,
        }
    }

    fn write(&self, w: &mut XmlWriter) {
        let (tag, value) = match self {
            Self::PrimarySmtpAddress(s) => ("t:PrimarySmtpAddress", s),
            Self::SmtpAddress(s) => ("t:SmtpAddress", s),
            Self::Sid(s) => ("t:SID", s),
            Self::PrincipalName(s) => ("t:PrincipalName", s),
        };
        w.open("t:ExchangeImpersonation", &[])
            .open("t:ConnectingSID", &[])
            .leaf(tag, value)
            .close("t:ConnectingSID")
            .close("t:ExchangeImpersonation");
    }
}

/// Wraps a request body (one `m:` element, as the [`crate::operation`] builders make) into an envelope
/// with the version and impersonation headers: exactly what the client sends.
pub fn envelope(version: ExchangeVersion, impersonation: Option<&Impersonation>, body: &str) -> String {
    // The header, with an impersonated address, stays well under this.
    const ENVELOPE: usize = 1024;
    let mut w = XmlWriter::with_capacity(body.len() + ENVELOPE);
    w.raw(r#"<?xml version="1.0" encoding="utf-8"?>"#);
    w.open("soap:Envelope", &[("xmlns:soap", NS_SOAP), ("xmlns:t", NS_TYPES), ("xmlns:m", NS_MESSAGES)]);
    w.open("soap:Header", &[]).empty("t:RequestServerVersion", &[("Version", version.as_str())]);
    if let Some(i) = impersonation {
        i.write(&mut w);
    }
    w.close("soap:Header").open("soap:Body", &[]).raw(body).close("soap:Body").close("soap:Envelope");
    w.finish()
}

/// What the server says it is (`t:ServerVersionInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerVersionInfo {
    /// Major version (14 = 2010, 15 = 2013+).
    pub major: Option<u32>,
    /// Minor version (0 = 2013, 1 = 2016, 2 = 2019).
    pub minor: Option<u32>,
    /// Major build number.
    pub major_build: Option<u32>,
    /// Minor build number.
    pub minor_build: Option<u32>,
    /// The schema version name, when sent (2013+ send e.g. `V2017_07_11`).
    pub version: Option<String>,
}

impl ServerVersionInfo {
    fn from_element(e: &Element) -> Self {
        Self::from_attributes(|a| e.attr(a))
    }

    /// From the attributes of a `t:ServerVersionInfo` element, looked up by local name.
    pub(crate) fn from_attributes<'a>(attr: impl Fn(&str) -> Option<&'a str>) -> Self {
        let n = |a: &str| attr(a).and_then(|v| v.parse().ok());
        Self {
            major: n("MajorVersion"),
            minor: n("MinorVersion"),
            major_build: n("MajorBuildNumber"),
            minor_build: n("MinorBuildNumber"),
            version: attr("Version").map(str::to_owned),
        }
    }
}

/// A parsed response envelope that is not a fault: what the operation parsers in
/// [`crate::operation`] read.
#[derive(Debug, Clone)]
pub struct SoapResponse {
    /// The server's version header, if any.
    pub server_version: Option<ServerVersionInfo>,
    /// The operation's response element (first child of Body).
    pub body: Element,
}

/// A `t:Value` of a `MessageXml` by its `Name`, trimmed.
fn message_value<'a>(message_xml: Option<&'a Element>, name: &str) -> Option<&'a str> {
    message_xml?
        .children
        .iter()
        .find(|v| v.name == "Value" && v.attr("Name") == Some(name))
        .map(|v| v.text.trim())
        .filter(|v| !v.is_empty())
}

fn back_off(message_xml: Option<&Element>) -> Option<Duration> {
    message_value(message_xml, "BackOffMilliseconds").and_then(|v| v.parse::<u64>().ok()).map(Duration::from_millis)
}

/// An EWS error with what its `MessageXml` adds: the back-off of ErrorServerBusy, and the inner
/// error of ErrorInternalServerError (`InnerErrorResponseCode`, `InnerErrorMessageText`), whose
/// text is appended to the message.
fn response_error(operation: &'static str, code: String, message: String, message_xml: Option<&Element>) -> EwsError {
    let inner_code = message_value(message_xml, "InnerErrorResponseCode").map(str::to_owned);
    let message = match message_value(message_xml, "InnerErrorMessageText") {
        Some(inner) if message.is_empty() => inner.to_owned(),
        Some(inner) => format!("{message} ({inner})"),
        None => message,
    };
    EwsError::Response {
        code,
        message,
        inner_code,
        back_off: back_off(message_xml),
        context: Box::new(ErrorContext::operation(operation)),
    }
}

/// Parses a response document. A SOAP fault becomes an [`EwsError::Response`] with the EWS code from
/// its detail (so ErrorServerBusy as a fault and as a message look the same to callers).
pub fn parse_envelope(operation: &'static str, bytes: &[u8], limits: ParseLimits) -> Result<SoapResponse> {
    let mut root = parse(bytes, limits).map_err(|e| EwsError::protocol(operation, e.to_string()))?;
    if root.name != "Envelope" {
        return Err(EwsError::protocol(operation, format!("expected Envelope, got {}", root.name)));
    }
    let server_version = root.path(&["Header", "ServerVersionInfo"]).map(ServerVersionInfo::from_element);
    // Move the operation element out of the tree rather than copying it: responses can be large.
    let body_index =
        root.children.iter().position(|c| c.name == "Body").ok_or_else(|| EwsError::protocol(operation, "no Body"))?;
    let mut body = root.children.swap_remove(body_index);
    if body.children.is_empty() {
        return Err(EwsError::protocol(operation, "empty Body"));
    }
    let first = body.children.swap_remove(0);
    if first.name == "Fault" {
        return Err(fault_error(operation, &first));
    }
    Ok(SoapResponse { server_version, body: first })
}

fn fault_error(operation: &'static str, fault: &Element) -> EwsError {
    let detail = fault.child("detail");
    let code = detail
        .and_then(|d| d.child_text("ResponseCode"))
        .map(str::to_owned)
        .or_else(|| fault.child_text("faultcode").map(|c| c.rsplit(':').next().unwrap_or(c).to_owned()))
        .unwrap_or_else(|| "SoapFault".to_owned());
    let message = fault
        .child_text("faultstring")
        .or_else(|| detail.and_then(|d| d.child_text("Message")))
        .unwrap_or_default()
        .to_owned();
    response_error(operation, code, message, detail.and_then(|d| d.child("MessageXml")))
}

/// The response messages of an operation response, each as the message element or its error.
///
/// `ResponseClass="Warning"` is a success except for ErrorBatchProcessingStopped, which marks an entry
/// the server did not process.
pub(crate) fn response_messages<'a>(operation: &'static str, body: &'a Element) -> Result<Vec<Result<&'a Element>>> {
    let messages =
        body.child("ResponseMessages").ok_or_else(|| EwsError::protocol(operation, "no ResponseMessages"))?;
    Ok(messages.children.iter().map(|m| message_result(operation, m)).collect())
}

/// Like [`response_messages`], moving each message out of the body (for parsers that take ids and
/// items out of the messages instead of copying them).
pub(crate) fn into_response_messages(operation: &'static str, mut body: Element) -> Result<Vec<Result<Element>>> {
    let messages =
        body.take_child("ResponseMessages").ok_or_else(|| EwsError::protocol(operation, "no ResponseMessages"))?;
    Ok(messages
        .children
        .into_iter()
        .map(|m| {
            message_result(operation, &m)?;
            Ok(m)
        })
        .collect())
}

fn message_result<'a>(operation: &'static str, m: &'a Element) -> Result<&'a Element> {
    let class = m.attr("ResponseClass").unwrap_or("Success");
    let code = m.child_text("ResponseCode").unwrap_or("NoError");
    let failed = match class {
        "Success" => false,
        "Warning" => code == "ErrorBatchProcessingStopped",
        _ => true,
    };
    if class == "Warning" && !failed {
        tracing::warn!(operation, code, "EWS warning");
    }
    if failed {
        let message = m.child_text("MessageText").unwrap_or_default().to_owned();
        return Err(response_error(operation, code.to_owned(), message, m.child("MessageXml")));
    }
    Ok(m)
}

/// The single response message of an operation that takes one target, as a result.
pub(crate) fn single_message<'a>(operation: &'static str, body: &'a Element) -> Result<&'a Element> {
    response_messages(operation, body)?
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(EwsError::protocol(operation, "no response message")))
}

/// Like [`single_message`], moving the message out of the body.
pub(crate) fn into_single_message(operation: &'static str, body: Element) -> Result<Element> {
    into_response_messages(operation, body)?
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(EwsError::protocol(operation, "no response message")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    const BUSY_FAULT_2013: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
  <s:Body>
    <s:Fault>
      <faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorServerBusy</faultcode>
      <faultstring xml:lang="en-US">The server cannot service this request right now. Try again later.</faultstring>
      <detail>
        <e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorServerBusy</e:ResponseCode>
        <e:Message xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">The server cannot service this request right now. Try again later.</e:Message>
        <t:MessageXml xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
          <t:Value Name="BackOffMilliseconds">297749</t:Value>
        </t:MessageXml>
      </detail>
    </s:Fault>
  </s:Body>
</s:Envelope>"#;

    #[test]
    fn busy_fault_carries_back_off() {
        let err = parse_envelope("FindItem", BUSY_FAULT_2013.as_bytes(), ParseLimits::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Throttled);
        assert_eq!(err.retry_after(), Some(Duration::from_millis(297_749)));
        assert_eq!(err.response_code(), Some("ErrorServerBusy"));
    }

    #[test]
    fn schema_version_fault_without_detail() {
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>
<faultcode xmlns:a="http://schemas.microsoft.com/exchange/services/2006/types">a:ErrorInvalidServerVersion</faultcode>
<faultstring xml:lang="en-US">The specified server version is invalid.</faultstring></s:Fault></s:Body></s:Envelope>"#;
        let err = parse_envelope("GetFolder", doc.as_bytes(), ParseLimits::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedVersion);
    }

    #[test]
    fn per_message_classes() {
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
<s:Header><h:ServerVersionInfo MajorVersion="14" MinorVersion="3" MajorBuildNumber="123" MinorBuildNumber="3" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header>
<s:Body><m:GetItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><m:ResponseMessages>
<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items/></m:GetItemResponseMessage>
<m:GetItemResponseMessage ResponseClass="Error"><m:MessageText>The server cannot service this request right now.</m:MessageText><m:ResponseCode>ErrorServerBusy</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:MessageXml><t:Value xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" Name="BackOffMilliseconds">5000</t:Value></m:MessageXml><m:Items/></m:GetItemResponseMessage>
<m:GetItemResponseMessage ResponseClass="Warning"><m:MessageText>stopped</m:MessageText><m:ResponseCode>ErrorBatchProcessingStopped</m:ResponseCode><m:Items/></m:GetItemResponseMessage>
</m:ResponseMessages></m:GetItemResponse></s:Body></s:Envelope>"#;
        let r = parse_envelope("GetItem", doc.as_bytes(), ParseLimits::default()).unwrap();
        assert_eq!(r.server_version.as_ref().and_then(|v| v.major), Some(14));
        let msgs = response_messages("GetItem", &r.body).unwrap();
        assert_eq!(msgs.len(), 3);
        assert!(msgs[0].is_ok());
        let busy = msgs[1].as_ref().unwrap_err();
        assert_eq!(busy.retry_after(), Some(Duration::from_millis(5000)));
        assert_eq!(msgs[2].as_ref().unwrap_err().kind(), ErrorKind::BatchStopped);
    }

    #[test]
    fn internal_error_is_read_with_its_inner_error() {
        let doc = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><m:DeleteItemResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>
<m:DeleteItemResponseMessage ResponseClass="Error"><m:MessageText>An internal server error occurred. The operation failed.</m:MessageText><m:ResponseCode>ErrorInternalServerError</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey><m:MessageXml><t:Value Name="InnerErrorMessageText">The mailbox is over its deleted items quota.</t:Value><t:Value Name="InnerErrorResponseCode">ErrorQuotaExceededOnDelete</t:Value><t:Value Name="InnerErrorDescriptiveLinkKey">0</t:Value></m:MessageXml></m:DeleteItemResponseMessage>
<m:DeleteItemResponseMessage ResponseClass="Error"><m:MessageText>An internal server error occurred. The operation failed.</m:MessageText><m:ResponseCode>ErrorInternalServerError</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey></m:DeleteItemResponseMessage>
</m:ResponseMessages></m:DeleteItemResponse></s:Body></s:Envelope>"#;
        let r = parse_envelope("DeleteItem", doc.as_bytes(), ParseLimits::default()).unwrap();
        let msgs = response_messages("DeleteItem", &r.body).unwrap();
        let quota = msgs[0].as_ref().unwrap_err();
        assert_eq!(quota.response_code(), Some("ErrorInternalServerError"));
        assert_eq!(quota.inner_code(), Some("ErrorQuotaExceededOnDelete"));
        assert_eq!(quota.kind(), ErrorKind::Server, "a quota is permanent");
        assert!(quota.to_string().contains("deleted items quota"), "{quota}");
        assert!(quota.to_string().contains("ErrorQuotaExceededOnDelete"), "{quota}");
        let bare = msgs[1].as_ref().unwrap_err();
        assert_eq!(bare.inner_code(), None);
        assert_eq!(bare.kind(), ErrorKind::Transient);
    }

    #[test]
    fn envelope_has_headers() {
        let e = envelope(
            ExchangeVersion::Exchange2013Sp1,
            Some(&Impersonation::PrimarySmtpAddress("alice@contoso.test".into())),
            "<m:GetFolder/>",
        );
        assert!(e.contains(r#"<t:RequestServerVersion Version="Exchange2013_SP1"/>"#));
        assert!(e.contains("<t:PrimarySmtpAddress>alice@contoso.test</t:PrimarySmtpAddress>"));
    }
}
