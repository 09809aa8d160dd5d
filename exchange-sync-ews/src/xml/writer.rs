//! Writing requests: a thin, escaping string builder.
//!
//! The EWS schema is made of `xs:sequence`s, so element order matters. The writer does not reorder;
//! the request types call it in schema order (and the tests validate the result against the schema).

/// Builds an XML document as a string. Names are written as given (with their `m:`/`t:` prefix).
#[derive(Debug, Default)]
pub struct XmlWriter {
    out: String,
}

fn escape_into(out: &mut String, text: &str, attribute: bool) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attribute => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\t' if attribute => out.push_str("&#9;"),
            // Characters XML 1.0 cannot carry at all are dropped rather than producing a broken document.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t') => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
}

impl XmlWriter {
    /// An empty document.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty document with room for `bytes` of XML: a large request (a batch of items) is
    /// written without growing its buffer step by step, each step a copy of everything so far.
    pub fn with_capacity(bytes: usize) -> Self {
        XmlWriter { out: String::with_capacity(bytes) }
    }

    fn tag(&mut self, name: &str, attributes: &[(&str, &str)]) {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attributes {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(&mut self.out, v, true);
            self.out.push('"');
        }
    }

    /// Opens an element.
    pub fn open(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.tag(name, attributes);
        self.out.push('>');
        self
    }

    /// Closes an element.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Writes an element without content.
    pub fn empty(&mut self, name: &str, attributes: &[(&str, &str)]) -> &mut Self {
        self.tag(name, attributes);
        self.out.push_str("/>");
        self
    }

    /// Writes an element holding text.
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.leaf_with(name, &[], text)
    }

    /// Writes an element with attributes holding text.
    pub fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) -> &mut Self {
        self.tag(name, attributes);
        self.out.push('>');
        escape_into(&mut self.out, text, false);
        self.close(name)
    }

    /// Appends already-serialized XML (produced by another writer).
    pub fn raw(&mut self, xml: &str) -> &mut Self {
        self.out.push_str(xml);
        self
    }

    /// The document written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::{ParseLimits, parse};

    #[test]
    fn escaped_text_round_trips() {
        let nasty = "a<b>&\"c'\r\nd\u{1}e";
        let mut w = XmlWriter::new();
        w.open("r", &[("k", nasty)]).leaf("t:x", nasty).close("r");
        let doc = w.finish();
        let e = parse(doc.as_bytes(), ParseLimits::default()).unwrap();
        assert_eq!(e.attr("k"), Some("a<b>&\"c'\r\nde"));
        assert_eq!(e.child("x").unwrap().text, "a<b>&\"c'\r\nde");
    }
}
