//! SIP message codec: a lenient, zero-copy parser and a serialiser.
//!
//! Parsing borrows from the input: a [`Message`] holds string slices of the
//! datagram, so a 200 OK costs one `Vec` of header slices. It is lenient where
//! real trunks are sloppy (header-name case, compact forms, repeated headers,
//! comma-joined values, bare LF line ends, folded lines, IPv6 references) and
//! strict on framing: on a stream a message without `Content-Length` is an
//! error, and a datagram whose `Content-Length` overruns it is rejected. No
//! input panics; the fuzz target `sip_codec` and a proptest round-trip
//! (`parse ∘ serialise = identity`) hold it to that.

use std::fmt::Write as _;

/// Why bytes are not a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("the message is not UTF-8 in its start line or headers")]
    NotUtf8,
    #[error("the message has no end of headers (blank line)")]
    Incomplete,
    #[error("bad start line: {0}")]
    StartLine(&'static str),
    #[error("a header line has no colon")]
    HeaderLine,
    #[error("Content-Length is not a number")]
    ContentLength,
    #[error("Content-Length says {declared} bytes but {available} follow")]
    BodyTruncated { declared: usize, available: usize },
    #[error("a stream message needs Content-Length")]
    MissingContentLength,
    #[error("the message is larger than {0} bytes")]
    TooLarge(usize),
}

/// Largest message a stream connection may frame (headers + body).
pub const MAX_STREAM_MESSAGE: usize = 65_535;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: &'a str, uri: &'a str },
    Response { code: u16, reason: &'a str },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: &'a str,
}

/// One SIP request or response, borrowing from the bytes it was parsed from
/// (or from the strings it was built with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    pub headers: Vec<Header<'a>>,
    pub body: &'a [u8],
}

/// Compact forms (RFC 3261 §7.3.3, RFC 3515, RFC 3841 …) and their long names.
const COMPACT: &[(&str, &str)] = &[
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("x", "Session-Expires"),
    ("a", "Accept-Contact"),
    ("u", "Allow-Events"),
];

/// True when a header called `actual` (any case, maybe compact) is `wanted`
/// (its long name).
pub fn header_name_is(actual: &str, wanted: &str) -> bool {
    if actual.eq_ignore_ascii_case(wanted) {
        return true;
    }
    if actual.len() == 1 {
        return COMPACT.iter().any(|(short, long)| {
            actual.eq_ignore_ascii_case(short) && long.eq_ignore_ascii_case(wanted)
        });
    }
    false
}

impl<'a> Message<'a> {
    /// Parses one datagram. `Content-Length` is optional (the body is the
    /// rest); when present it must not overrun the datagram, and bytes past it
    /// are ignored (RFC 3261 §18.3).
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, CodecError> {
        let bytes = skip_leading_blank_lines(bytes);
        let (head_len, body_start) = find_head_end(bytes).ok_or(CodecError::Incomplete)?;
        let head = bytes.get(..head_len).ok_or(CodecError::Incomplete)?;
        let head = std::str::from_utf8(head).map_err(|_| CodecError::NotUtf8)?;
        let rest = bytes.get(body_start..).unwrap_or_default();
        let mut lines = LineIter { text: head };
        let first = lines.next().ok_or(CodecError::StartLine("empty"))?;
        let start = parse_start_line(first)?;
        let mut headers: Vec<Header<'a>> = Vec::with_capacity(16);
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':').ok_or(CodecError::HeaderLine)?;
            let name = name.trim_end_matches([' ', '\t']);
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err(CodecError::HeaderLine);
            }
            headers.push(Header {
                name,
                value: value.trim_matches([' ', '\t', '\r', '\n']),
            });
        }
        let message = Message {
            start,
            headers,
            body: rest,
        };
        let body = match message.content_length()? {
            Some(declared) => rest.get(..declared).ok_or(CodecError::BodyTruncated {
                declared,
                available: rest.len(),
            })?,
            None => rest,
        };
        Ok(Message { body, ..message })
    }

    /// The declared `Content-Length`, if any.
    pub fn content_length(&self) -> Result<Option<usize>, CodecError> {
        match self.header("Content-Length") {
            Some(value) => value
                .trim()
                .parse::<usize>()
                .map(Some)
                .map_err(|_| CodecError::ContentLength),
            None => Ok(None),
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<(u16, &'a str)> {
        match self.start {
            StartLine::Response { code, reason } => Some((code, reason)),
            StartLine::Request { .. } => None,
        }
    }

    /// The first header with this (long) name, matched case-insensitively
    /// and through compact forms.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|h| header_name_is(h.name, name))
            .map(|h| h.value)
    }

    /// Every value of a header, across repeated lines and comma-joined lists
    /// (commas inside quotes or `<…>` do not split).
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a str> + 's {
        self.headers
            .iter()
            .filter(move |h| header_name_is(h.name, name))
            .flat_map(|h| split_list(h.value))
    }

    pub fn call_id(&self) -> Option<&'a str> {
        self.header("Call-ID")
    }

    pub fn cseq(&self) -> Option<CSeq<'a>> {
        self.header("CSeq").and_then(CSeq::parse)
    }

    pub fn top_via(&self) -> Option<Via<'a>> {
        self.header_values("Via").next().and_then(Via::parse)
    }

    pub fn from(&self) -> Option<NameAddr<'a>> {
        self.header("From").and_then(NameAddr::parse)
    }

    pub fn to(&self) -> Option<NameAddr<'a>> {
        self.header("To").and_then(NameAddr::parse)
    }

    /// True when a comma-separated option list header (Require, Supported)
    /// holds `tag`.
    pub fn has_option(&self, header: &str, tag: &str) -> bool {
        self.header_values(header)
            .any(|v| v.trim().eq_ignore_ascii_case(tag))
    }

    /// Writes the message: start line, headers in order, blank line, body.
    /// Headers are written as held; the caller keeps `Content-Length` right
    /// (see [`MessageBuilder`], which does).
    pub fn serialise(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        self.write_to(&mut out);
        out
    }

    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self.start {
            StartLine::Request { method, uri } => {
                out.extend_from_slice(method.as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                out.extend_from_slice(code.to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for header in &self.headers {
            out.extend_from_slice(header.name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(header.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
    }
}

/// For a stream (TCP): how many bytes the first complete message in `buffer`
/// takes, counting leading CRLF keep-alives. `Ok(None)` means more bytes are
/// needed. A message without `Content-Length` is a framing error: the
/// connection cannot be resynchronised and should be closed.
pub fn frame_stream(buffer: &[u8]) -> Result<Option<usize>, CodecError> {
    let skipped = buffer.len() - skip_leading_blank_lines(buffer).len();
    let rest = buffer.get(skipped..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(if skipped > 0 { Some(skipped) } else { None });
    }
    let Some((head_len, body_start)) = find_head_end(rest) else {
        if rest.len() > MAX_STREAM_MESSAGE {
            return Err(CodecError::TooLarge(MAX_STREAM_MESSAGE));
        }
        return Ok(None);
    };
    let head = rest.get(..head_len).unwrap_or_default();
    let head = std::str::from_utf8(head).map_err(|_| CodecError::NotUtf8)?;
    let mut length = None;
    for line in (LineIter { text: head }).skip(1) {
        if let Some((name, value)) = line.split_once(':')
            && header_name_is(name.trim(), "Content-Length")
        {
            length = Some(
                value
                    .trim()
                    .parse::<usize>()
                    .map_err(|_| CodecError::ContentLength)?,
            );
        }
    }
    let length = length.ok_or(CodecError::MissingContentLength)?;
    let total = body_start.saturating_add(length);
    if total > MAX_STREAM_MESSAGE {
        return Err(CodecError::TooLarge(MAX_STREAM_MESSAGE));
    }
    Ok((rest.len() >= total).then_some(skipped + total))
}

fn skip_leading_blank_lines(mut bytes: &[u8]) -> &[u8] {
    while let [b'\r' | b'\n', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// (length of the head without the blank line, index where the body starts)
fn find_head_end(bytes: &[u8]) -> Option<(usize, usize)> {
    for i in memchr::memchr_iter(b'\n', bytes) {
        match (bytes.get(i + 1), bytes.get(i + 2)) {
            (Some(b'\n'), _) => return Some((i, i + 2)),
            (Some(b'\r'), Some(b'\n')) => return Some((i, i + 3)),
            _ => {}
        }
    }
    None
}

/// Lines of a head, joining folded continuation lines (leading SP/HT) into
/// the line before (the slice spans both; values are trimmed by callers).
struct LineIter<'a> {
    text: &'a str,
}

impl<'a> Iterator for LineIter<'a> {
    type Item = &'a str;
    fn next(&mut self) -> Option<&'a str> {
        if self.text.is_empty() {
            return None;
        }
        let bytes = self.text.as_bytes();
        let mut end = 0;
        let line_end = loop {
            match self.text.get(end..).and_then(|t| t.find('\n')) {
                None => break self.text.len(),
                Some(pos) => {
                    let nl = end + pos;
                    match bytes.get(nl + 1) {
                        Some(b' ' | b'\t') => end = nl + 1,
                        _ => break nl,
                    }
                }
            }
        };
        let line = self.text.get(..line_end).unwrap_or_default();
        self.text = self.text.get(line_end + 1..).unwrap_or_default();
        Some(line.trim_end_matches('\r'))
    }
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, CodecError> {
    if let Some(rest) = line.strip_prefix("SIP/2.0 ") {
        let rest = rest.trim_start();
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        let code: u16 = code
            .parse()
            .map_err(|_| CodecError::StartLine("status code is not a number"))?;
        if !(100..=699).contains(&code) {
            return Err(CodecError::StartLine("status code outside 100–699"));
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.trim(),
        });
    }
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let method = parts.next().ok_or(CodecError::StartLine("no method"))?;
    let uri = parts
        .next()
        .ok_or(CodecError::StartLine("no Request-URI"))?;
    let version = parts
        .next()
        .ok_or(CodecError::StartLine("no SIP version"))?;
    if parts.next().is_some() || !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(CodecError::StartLine("not SIP/2.0"));
    }
    if !method.bytes().all(is_token_byte) {
        return Err(CodecError::StartLine("method is not a token"));
    }
    Ok(StartLine::Request { method, uri })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Splits a header value on commas outside quotes and angle brackets.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        loop {
            let text = rest?;
            let mut quoted = false;
            let mut angle = false;
            let mut escaped = false;
            let mut cut = None;
            for (i, c) in text.char_indices() {
                if escaped {
                    escaped = false;
                    continue;
                }
                match c {
                    '\\' if quoted => escaped = true,
                    '"' => quoted = !quoted,
                    '<' if !quoted => angle = true,
                    '>' if !quoted => angle = false,
                    ',' if !quoted && !angle => {
                        cut = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let item = match cut {
                Some(i) => {
                    rest = text.get(i + 1..);
                    text.get(..i).unwrap_or_default()
                }
                None => {
                    rest = None;
                    text
                }
            };
            let item = item.trim();
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

/// `;name=value` parameters after some leading part.
pub fn param<'a>(params: &'a str, name: &str) -> Option<&'a str> {
    params.split(';').skip(1).find_map(|p| {
        let (key, value) = p.split_once('=').unwrap_or((p, ""));
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"'))
    })
}

pub fn has_param(params: &str, name: &str) -> bool {
    param(params, name).is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub number: u32,
    pub method: &'a str,
}

impl<'a> CSeq<'a> {
    pub fn parse(value: &'a str) -> Option<CSeq<'a>> {
        let mut parts = value.split_whitespace();
        let number = parts.next()?.parse().ok()?;
        let method = parts.next()?;
        Some(CSeq { number, method })
    }
}

/// One Via value: `SIP/2.0/UDP host:port;branch=…;rport;received=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via<'a> {
    pub transport: &'a str,
    pub sent_by: &'a str,
    pub params: &'a str,
}

impl<'a> Via<'a> {
    pub fn parse(value: &'a str) -> Option<Via<'a>> {
        let (protocol, rest) = value.trim().split_once([' ', '\t'])?;
        let transport = protocol.rsplit('/').next()?;
        let rest = rest.trim_start();
        let (sent_by, _) = rest.split_once(';').unwrap_or((rest, ""));
        let params = rest.get(sent_by.len()..).unwrap_or_default();
        Some(Via {
            transport,
            sent_by: sent_by.trim(),
            params,
        })
    }

    pub fn branch(&self) -> Option<&'a str> {
        param(self.params, "branch")
    }
}

/// `"Display" <uri>;params` or `uri;params`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    pub uri: &'a str,
    pub params: &'a str,
}

impl<'a> NameAddr<'a> {
    pub fn parse(value: &'a str) -> Option<NameAddr<'a>> {
        let value = value.trim();
        if let Some(open) = value.find('<') {
            let after = value.get(open + 1..)?;
            let close = after.find('>')?;
            return Some(NameAddr {
                uri: after.get(..close)?.trim(),
                params: after.get(close + 1..)?,
            });
        }
        let (uri, _) = value.split_once(';').unwrap_or((value, ""));
        Some(NameAddr {
            uri,
            params: value.get(uri.len()..)?,
        })
    }

    pub fn tag(&self) -> Option<&'a str> {
        param(self.params, "tag")
    }
}

/// The parts of a `sip:`/`sips:` URI the signalling layer routes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri<'a> {
    pub user: Option<&'a str>,
    /// Host name or address; IPv6 without brackets.
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: &'a str,
}

impl<'a> SipUri<'a> {
    pub fn parse(uri: &'a str) -> Option<SipUri<'a>> {
        let uri = uri.trim();
        let rest = uri
            .strip_prefix("sip:")
            .or_else(|| uri.strip_prefix("sips:"))
            .or_else(|| uri.strip_prefix("SIP:"))?;
        let rest = rest.split_once('?').map_or(rest, |(r, _)| r);
        let (user, hostport) = match rest.rfind('@') {
            Some(at) => (Some(rest.get(..at)?), rest.get(at + 1..)?),
            None => (None, rest),
        };
        let user = user.map(|u| u.split_once(':').map_or(u, |(name, _)| name));
        let (hostport, params) = match hostport.find(';') {
            Some(i) => (hostport.get(..i)?, hostport.get(i..)?),
            None => (hostport, ""),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let close = v6.find(']')?;
            let host = v6.get(..close)?;
            let after = v6.get(close + 1..)?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p.parse().ok()?),
                None if after.is_empty() => None,
                None => return None,
            };
            (host, port)
        } else {
            match hostport.split_once(':') {
                Some((host, port)) => (host, Some(port.parse().ok()?)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(SipUri {
            user,
            host,
            port,
            params,
        })
    }

    pub fn transport(&self) -> Option<&'a str> {
        param(self.params, "transport")
    }

    /// `host` or `host:port` as the URI has it, IPv6 bracketed: what a
    /// Request-URI to this host carries (no port added, which would turn
    /// off the SRV lookup RFC 3263 asks for a bare host name).
    pub fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.to_string()
        };
        match self.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        }
    }

    /// `host:port` with IPv6 bracketed, the port defaulting to 5060.
    pub fn host_port(&self) -> String {
        let port = self.port.unwrap_or(5060);
        if self.host.contains(':') {
            format!("[{}]:{port}", self.host)
        } else {
            format!("{}:{port}", self.host)
        }
    }
}

/// Builds a message into text, keeping `Content-Length` right. Used for
/// every message the endpoint sends.
pub struct MessageBuilder {
    text: String,
}

impl MessageBuilder {
    pub fn request(method: &str, uri: &str) -> Self {
        let mut text = String::with_capacity(512);
        let _ = write!(text, "{method} {uri} SIP/2.0\r\n");
        Self { text }
    }

    pub fn response(code: u16, reason: &str) -> Self {
        let mut text = String::with_capacity(512);
        let _ = write!(text, "SIP/2.0 {code} {reason}\r\n");
        Self { text }
    }

    pub fn header(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        let _ = write!(self.text, "{name}: {value}\r\n");
        self
    }

    pub fn header_opt(self, name: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(value) => self.header(name, value),
            None => self,
        }
    }

    /// Finishes with a body (which may be empty) and its Content-Length.
    pub fn body(mut self, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
        if let Some(content_type) = content_type
            && !body.is_empty()
        {
            let _ = write!(self.text, "Content-Type: {content_type}\r\n");
        }
        let _ = write!(self.text, "Content-Length: {}\r\n\r\n", body.len());
        let mut bytes = self.text.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    pub fn finish(self) -> Vec<u8> {
        self.body(None, &[])
    }
}

#[cfg(test)]
mod tests;
