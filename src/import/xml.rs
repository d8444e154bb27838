//! A small element tree read with `quick-xml`, shared by the XML importers (WSXF, ATML,
//! TestStand). Names are kept as local names with their resolved namespace, so the
//! mappings match on `(namespace, local name)` whatever prefixes a writer chose.
//!
//! Files are at most `MAX_IMPORT_FILE` bytes, so a tree is fine; nesting deeper than
//! `MAX_DEPTH` is refused (every mapping walks the tree recursively).

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

/// Deepest element nesting read.
pub const MAX_DEPTH: usize = 200;

/// An element: namespace, local name, attributes (local names, in file order), child
/// elements and the text directly inside it (concatenated).
#[derive(Debug, Clone, Default)]
pub struct Element {
    pub ns: Option<String>,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
    /// Byte offset of the start tag in the file.
    pub offset: usize,
}

/// Where and why the file is not well-formed XML.
#[derive(Debug, Clone)]
pub struct XmlError {
    pub message: String,
    pub offset: usize,
    pub line: usize,
}

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (line {}, byte {})",
            self.message, self.line, self.offset
        )
    }
}

/// Why `bytes` is not an XML document at all, naming the format it looks like, when
/// it does not start (after a byte order mark and whitespace) with `<`.
pub fn not_xml(bytes: &[u8]) -> Option<String> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if body.starts_with(&[0x02, 0x00, 0x00, 0x0A]) || body.starts_with(&[0x00, 0x02, 0x00, 0x0A]) {
        return Some("it is a binary STDF file; import it with importer STDF".into());
    }
    let start = body.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = &body[start..];
    if rest.starts_with(b"<") {
        return None;
    }
    if rest.starts_with(b"FAR:A") {
        return Some("it looks like ATDF; import it with importer ATDF".into());
    }
    if rest.starts_with(b"{") {
        let text = String::from_utf8_lossy(&rest[..rest.len().min(1 << 16)]);
        let hint = if text.contains("\"phases\"") && text.contains("\"start_time_millis\"") {
            "OPENHTF"
        } else {
            "WATS"
        };
        return Some(format!(
            "it is JSON, not XML; it looks like {hint}; import it with importer {hint}"
        ));
    }
    Some(format!(
        "it is not XML (it starts with byte 0x{:02X} at offset {})",
        rest[0],
        start + (bytes.len() - body.len())
    ))
}

/// 1-based line of byte `offset`.
pub fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Parses a whole document into its root element. `<?xml:stylesheet …>` instructions
/// are ignored even when malformed (old TestStand versions wrote them without `?>`).
pub fn parse(bytes: &[u8]) -> Result<Element, XmlError> {
    let cleaned = strip_stylesheets(bytes);
    let bytes: &[u8] = &cleaned;
    let bom = if bytes.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let body = &bytes[bom..];
    let fail = |message: String, at: usize| XmlError {
        line: line_of(bytes, at + bom),
        offset: at + bom,
        message,
    };
    if body.starts_with(b"\xFF\xFE") || body.starts_with(b"\xFE\xFF") {
        return Err(fail(
            "UTF-16 files are not supported: save as UTF-8".into(),
            0,
        ));
    }
    let latin1: String;
    let body = match std::str::from_utf8(body) {
        Ok(_) => body,
        // TestStand writes `iso-8859-1` reports: read them byte per character.
        Err(_) if declares_latin1(body) => {
            latin1 = body.iter().map(|b| *b as char).collect();
            latin1.as_bytes()
        }
        Err(e) => return Err(fail("not valid UTF-8".into(), e.valid_up_to())),
    };
    let mut reader = NsReader::from_reader(body);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    loop {
        let at = reader.buffer_position() as usize;
        let (ns, event) = match reader.read_resolved_event() {
            Ok(x) => x,
            Err(e) => return Err(fail(e.to_string(), reader.error_position() as usize)),
        };
        let ns = match ns {
            ResolveResult::Bound(n) => Some(String::from_utf8_lossy(n.0).into_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(p) => {
                return Err(fail(
                    format!("unknown namespace prefix `{}`", String::from_utf8_lossy(&p)),
                    at,
                ))
            }
        };
        match event {
            Event::Start(e) => {
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(
                        format!("elements nested deeper than {MAX_DEPTH} levels"),
                        at,
                    ));
                }
                if root.is_some() && stack.is_empty() {
                    return Err(fail("more than one root element".into(), at));
                }
                stack.push(element(&e, ns, at).map_err(|m| fail(m, at))?);
            }
            Event::Empty(e) => {
                if root.is_some() && stack.is_empty() {
                    return Err(fail("more than one root element".into(), at));
                }
                let el = element(&e, ns, at).map_err(|m| fail(m, at))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| fail("closing tag without an opening tag".into(), at))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let text = t
                    .unescape()
                    .map_err(|e| fail(format!("bad text: {e}"), at))?;
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None if text.trim().is_empty() => {}
                    None => return Err(fail("text outside the root element".into(), at)),
                }
            }
            Event::CData(t) => {
                let text = String::from_utf8_lossy(&t).into_owned();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&text),
                    None => return Err(fail("CDATA outside the root element".into(), at)),
                }
            }
            Event::Eof => break,
            // Declarations, processing instructions (`<?TS …?>`, stylesheets), comments
            // and doctypes carry nothing a mapping uses.
            _ => {}
        }
    }
    if let Some(open) = stack.last() {
        return Err(fail(
            format!("unexpected end of file: <{}> is not closed", open.name),
            bytes.len() - bom,
        ));
    }
    root.ok_or_else(|| fail("no root element".into(), 0))
}

/// Blanks out `<?xml:stylesheet …>` / `<?xml-stylesheet …>` instructions (old TestStand
/// versions wrote malformed ones), keeping every other byte where it was.
fn strip_stylesheets(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let needles: [&[u8]; 2] = [b"<?xml:stylesheet", b"<?xml-stylesheet"];
    let found = |b: &[u8]| {
        needles
            .iter()
            .filter_map(|n| b.windows(n.len()).position(|w| w == *n))
            .min()
    };
    if found(bytes).is_none() {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = bytes.to_vec();
    let mut from = 0;
    while let Some(i) = found(&out[from..]).map(|i| i + from) {
        let end = out[i..]
            .iter()
            .position(|b| *b == b'>')
            .map_or(out.len(), |e| i + e + 1);
        for b in &mut out[i..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
        from = end;
    }
    std::borrow::Cow::Owned(out)
}

/// Whether the XML declaration names ISO-8859-1 / Latin-1 / Windows-1252.
fn declares_latin1(body: &[u8]) -> bool {
    let head = &body[..body.len().min(200)];
    let Some(end) = head.windows(2).position(|w| w == b"?>") else {
        return false;
    };
    let decl = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    decl.starts_with("<?xml")
        && [
            "iso-8859-1",
            "latin1",
            "latin-1",
            "windows-1252",
            "iso8859-1",
        ]
        .iter()
        .any(|e| decl.contains(e))
}

fn element(e: &BytesStart<'_>, ns: Option<String>, offset: usize) -> Result<Element, String> {
    let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| format!("bad attribute in <{name}>: {err}"))?;
        let key = a.key;
        if key.as_ref() == b"xmlns" || key.prefix().is_some_and(|p| p.as_ref() == b"xmlns") {
            continue;
        }
        let local = String::from_utf8_lossy(key.local_name().as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| format!("bad value of attribute `{local}` in <{name}>: {err}"))?
            .into_owned();
        attrs.push((local, value));
    }
    Ok(Element {
        ns,
        name,
        attrs,
        children: Vec::new(),
        text: String::new(),
        offset,
    })
}

impl Element {
    /// The attribute `name` (exact local name).
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The attribute `name`, matched ignoring ASCII case; trimmed, `None` when empty.
    pub fn attr_ci(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// The first child element with local name `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first child element with local name `name`, ignoring ASCII case.
    pub fn child_ci(&self, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The child elements with local name `name`.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at `path` of local names below this one.
    pub fn at(&self, path: &[&str]) -> Option<&Element> {
        path.iter().try_fold(self, |el, name| el.child(name))
    }

    /// The trimmed text, `None` when empty.
    pub fn text(&self) -> Option<&str> {
        Some(self.text.trim()).filter(|t| !t.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tree_with_namespaces() {
        let doc = br#"<?xml version="1.0"?><?TS version="2019"?>
<r:Root xmlns:r="urn:a" xmlns:c="urn:c" id="1"><c:Item c:name="&amp;x">t<![CDATA[<y>]]></c:Item><Plain/></r:Root>"#;
        let root = parse(doc).unwrap();
        assert_eq!(root.name, "Root");
        assert_eq!(root.ns.as_deref(), Some("urn:a"));
        assert_eq!(root.attr("id"), Some("1"));
        let item = root.child("Item").unwrap();
        assert_eq!(item.ns.as_deref(), Some("urn:c"));
        assert_eq!(item.attr("name"), Some("&x"));
        assert_eq!(item.text, "t<y>");
        assert!(root.child("Plain").unwrap().ns.is_none());
    }

    #[test]
    fn stylesheets_are_blanked() {
        let doc = b"<?xml version='1.0'?>\n<?xml:stylesheet type=\"text/xsl\" href=\"C:\\a b.xsl\">\n<Reports/>";
        let out = strip_stylesheets(doc);
        assert_eq!(out.len(), doc.len());
        assert!(parse(&out).is_ok());
    }

    #[test]
    fn latin1_when_declared() {
        let doc = b"<?xml version='1.0' encoding='iso-8859-1'?><a n='\xE9'>\xFC</a>";
        let root = parse(doc).unwrap();
        assert_eq!(root.attr("n"), Some("\u{e9}"));
        assert_eq!(root.text, "\u{fc}");
        assert!(parse(b"<a>\xFC</a>").unwrap_err().message.contains("UTF-8"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse(b"<a>\n<b>\n</a>").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = parse(b"<a>\n<b>").unwrap_err();
        assert!(e.message.contains("<b> is not closed"), "{e}");
        assert!(parse(b"").is_err());
        assert!(parse(b"<a/><b/>").is_err());
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        assert!(parse(deep.as_bytes())
            .unwrap_err()
            .message
            .contains("nested"));
    }
}
