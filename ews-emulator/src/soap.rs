//! SOAP 1.1 envelopes: reading requests, writing responses and faults.

use crate::config::ServerVersion;
use crate::xml::{Element, NS_ERRORS, NS_MESSAGES, NS_SOAP, NS_TYPES, XmlError, escape};

/// The parts of a request envelope an operation needs.
#[derive(Debug, Clone)]
pub struct SoapRequest {
    /// `t:RequestServerVersion/@Version`, if sent.
    pub request_version: Option<String>,
    /// Address (or principal name) from `t:ExchangeImpersonation`, if sent.
    pub impersonate: Option<String>,
    /// The operation element (first child of Body), in the messages namespace.
    pub operation: Element,
}

/// A SOAP fault the way Exchange sends it (HTTP 500, `a:Error...` faultcode, details in the
/// errors namespace).
#[derive(Debug, Clone)]
pub struct Fault {
    /// HTTP status (500 for every EWS fault).
    pub status: u16,
    /// EWS response code, e.g. `ErrorSchemaValidation`.
    pub code: &'static str,
    /// The faultstring.
    pub message: String,
    /// Back-off for ErrorServerBusy.
    pub backoff_ms: Option<u64>,
    /// Whether the request was a valid EWS document (only those are kept as traces).
    pub request_valid: bool,
}

impl Fault {
    /// A fault for a request that is not valid EWS.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Fault { status: 500, code, message: message.into(), backoff_ms: None, request_valid: false }
    }

    /// A fault for a valid request that the server refuses.
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Fault { status: 500, code, message: message.into(), backoff_ms: None, request_valid: true }
    }

    /// ErrorServerBusy with a back-off.
    pub fn busy(backoff_ms: u64) -> Self {
        Fault {
            status: 500,
            code: "ErrorServerBusy",
            message: "The server cannot service this request right now. Try again later.".into(),
            backoff_ms: Some(backoff_ms),
            request_valid: true,
        }
    }

    /// The envelope text. Like Exchange's, a fault carries `ServerVersionInfo` in its header:
    /// clients that guess the server's version (exchangelib sends a request and reads the header,
    /// whatever the answer) read it there.
    pub fn to_xml(&self, version: ServerVersion) -> String {
        let (major, minor, build, minor_build, name) = version.version_info();
        let mut s = String::with_capacity(1024);
        s.push_str(r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s=""#);
        s.push_str(NS_SOAP);
        s.push_str(r#""><s:Header><h:ServerVersionInfo xmlns:h=""#);
        s.push_str(NS_TYPES);
        s.push_str(&format!(
            r#"" MajorVersion="{major}" MinorVersion="{minor}" MajorBuildNumber="{build}" MinorBuildNumber="{minor_build}" Version="{name}"/></s:Header>"#
        ));
        s.push_str(r#"<s:Body><s:Fault><faultcode xmlns:a=""#);
        s.push_str(NS_TYPES);
        s.push_str(r#"">a:"#);
        s.push_str(self.code);
        s.push_str(r#"</faultcode><faultstring xml:lang="en-US">"#);
        s.push_str(&escape(&self.message));
        s.push_str(r#"</faultstring><detail><e:ResponseCode xmlns:e=""#);
        s.push_str(NS_ERRORS);
        s.push_str(r#"">"#);
        s.push_str(self.code);
        s.push_str(r#"</e:ResponseCode><e:Message xmlns:e=""#);
        s.push_str(NS_ERRORS);
        s.push_str(r#"">"#);
        s.push_str(&escape(&self.message));
        s.push_str("</e:Message>");
        if let Some(ms) = self.backoff_ms {
            s.push_str(r#"<t:MessageXml xmlns:t=""#);
            s.push_str(NS_TYPES);
            s.push_str(r#""><t:Value Name="BackOffMilliseconds">"#);
            s.push_str(&ms.to_string());
            s.push_str("</t:Value></t:MessageXml>");
        }
        s.push_str("</detail></s:Fault></s:Body></s:Envelope>");
        s
    }
}

impl From<XmlError> for Fault {
    fn from(e: XmlError) -> Self {
        Fault::invalid("ErrorSchemaValidation", format!("The request failed schema validation: {e}"))
    }
}

/// Reads a request envelope: SOAP 1.1 namespace, one operation in the messages namespace.
pub fn parse_request(bytes: &[u8]) -> Result<SoapRequest, Fault> {
    let root = crate::xml::parse(bytes)?;
    let bad =
        |why: &str| Fault::invalid("ErrorSchemaValidation", format!("The request failed schema validation: {why}"));
    if root.name != "Envelope" || root.ns != NS_SOAP {
        return Err(bad("the root element is not a SOAP 1.1 Envelope"));
    }
    let mut request_version = None;
    let mut impersonate = None;
    if let Some(header) = root.children.iter().find(|c| c.name == "Header" && c.ns == NS_SOAP) {
        for h in &header.children {
            if h.ns != NS_TYPES {
                continue;
            }
            match &*h.name {
                "RequestServerVersion" => request_version = h.attr("Version").map(str::to_string),
                "ExchangeImpersonation" => {
                    let sid =
                        h.child("ConnectingSID").ok_or_else(|| bad("ExchangeImpersonation without ConnectingSID"))?;
                    let who = sid
                        .children
                        .first()
                        .map(|c| c.text.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| bad("empty ConnectingSID"))?;
                    impersonate = Some(who);
                }
                _ => {}
            }
        }
    }
    let body = root
        .children
        .iter()
        .find(|c| c.name == "Body" && c.ns == NS_SOAP)
        .ok_or_else(|| bad("the envelope has no Body"))?;
    let operation = body.children.first().ok_or_else(|| bad("the Body is empty"))?;
    if operation.ns != NS_MESSAGES {
        return Err(bad(&format!("the element {} is not in the EWS messages namespace", operation.name)));
    }
    Ok(SoapRequest { request_version, impersonate, operation: operation.clone() })
}

/// Wraps an operation response body in an envelope with `t:ServerVersionInfo`.
pub fn response_envelope(version: ServerVersion, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + 600);
    envelope_into(&mut s, version, body);
    s
}

/// Like [`response_envelope`], appending to a buffer.
pub fn envelope_into(s: &mut String, version: ServerVersion, body: &str) {
    let (major, minor, build, minor_build, name) = version.version_info();
    s.push_str(r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s=""#);
    s.push_str(NS_SOAP);
    s.push_str(r#""><s:Header><h:ServerVersionInfo xmlns:h=""#);
    s.push_str(NS_TYPES);
    s.push_str(&format!(
        r#"" MajorVersion="{major}" MinorVersion="{minor}" MajorBuildNumber="{build}" MinorBuildNumber="{minor_build}" Version="{name}"/></s:Header><s:Body xmlns:m=""#
    ));
    s.push_str(NS_MESSAGES);
    s.push_str(r#"" xmlns:t=""#);
    s.push_str(NS_TYPES);
    s.push_str(r#"">"#);
    s.push_str(body);
    s.push_str("</s:Body></s:Envelope>");
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
  <soap:Header>
    <t:RequestServerVersion Version="Exchange2013"/>
    <t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>alice@contoso.test</t:PrimarySmtpAddress></t:ConnectingSID></t:ExchangeImpersonation>
  </soap:Header>
  <soap:Body><m:GetFolder/></soap:Body>
</soap:Envelope>"#;

    #[test]
    fn reads_headers_and_operation() {
        let r = parse_request(REQ.as_bytes()).unwrap();
        assert_eq!(r.request_version.as_deref(), Some("Exchange2013"));
        assert_eq!(r.impersonate.as_deref(), Some("alice@contoso.test"));
        assert_eq!(r.operation.name, "GetFolder");
    }

    #[test]
    fn truncated_and_mutated_requests_never_panic() {
        use rand::{Rng, SeedableRng};
        let bytes = REQ.as_bytes();
        for cut in 0..bytes.len() {
            let _ = parse_request(&bytes[..cut]);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..2000 {
            let mut b = bytes.to_vec();
            for _ in 0..rng.gen_range(1..6) {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.r#gen();
            }
            let _ = parse_request(&b);
        }
    }

    #[test]
    fn refuses_wrong_namespaces_and_garbage() {
        let soap12 =
            REQ.replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope");
        assert_eq!(parse_request(soap12.as_bytes()).unwrap_err().code, "ErrorSchemaValidation");
        let wrong_op = REQ.replace("<m:GetFolder/>", "<t:GetFolder/>");
        assert!(parse_request(wrong_op.as_bytes()).is_err());
        assert!(parse_request(b"\x00\xff garbage").is_err());
        let f = Fault::busy(250).to_xml(ServerVersion::Exchange2016);
        assert!(f.contains("<s:Header><h:ServerVersionInfo"));
        assert!(f.contains("BackOffMilliseconds\">250<"));
        assert!(crate::xml::parse(f.as_bytes()).is_ok());
    }
}
