//! Rust doc comments carried over as C# XML documentation comments.

/// `/// <summary>` lines for a docstring, indented by `indent` spaces; empty when there is none.
pub(crate) fn summary(doc: Option<&str>, indent: usize) -> String {
    let Some(doc) = doc else { return String::new() };
    let pad = " ".repeat(indent);
    let mut out = format!("{pad}/// <summary>\n");
    for line in doc.trim().lines() {
        let escaped = line.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        out.push_str(&format!("{pad}/// {}\n", escaped.trim_end()));
    }
    out.push_str(&format!("{pad}/// </summary>\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml_and_indents() {
        let s = summary(Some("A <b> & c\nsecond"), 4);
        assert_eq!(s, "    /// <summary>\n    /// A &lt;b&gt; &amp; c\n    /// second\n    /// </summary>\n");
        assert_eq!(summary(None, 4), "");
    }
}
