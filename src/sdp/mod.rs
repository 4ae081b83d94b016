//! SDP (RFC 4566) for audio calls: a lenient parser and a serialiser
//! ([`SessionDescription`]), and RFC 3264 offer/answer for G.711 plus
//! RFC 4733 telephone-event ([`answer_offer`], [`build_offer`], [`process_answer`]).
//!
//! Lenient on purpose: trunks send `\n` line ends, unknown lines, static
//! payload types without `rtpmap`, stray spaces. What cannot be understood
//! is kept verbatim (attributes) or skipped (unknown line types); only a
//! document we cannot answer at all (no `v=`, a malformed `m=`) is an error.

mod negotiate;

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use thiserror::Error;

pub use negotiate::{
    Codec, DialogSdp, Direction, MediaSession, Negotiated, NegotiationError, ReofferError,
    answer_offer, build_offer, process_answer,
};

/// Bounds that keep a hostile document from costing memory or time.
const MAX_SDP_BYTES: usize = 16 * 1024;
const MAX_MEDIA: usize = 32;
const MAX_ATTRIBUTES: usize = 128;
const MAX_FORMATS: usize = 64;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SdpError {
    #[error("SDP body is empty")]
    Empty,
    #[error("SDP body is {0} bytes; the limit is {MAX_SDP_BYTES}")]
    TooLarge(usize),
    #[error("SDP is not UTF-8 text")]
    NotText,
    #[error("SDP must start with `v=0`")]
    NoVersion,
    #[error("malformed `m=` line `{0}`: expected `m=<media> <port> <proto> <fmt> ...`")]
    BadMedia(String),
    #[error("SDP has more than {0} of {1}")]
    TooMany(usize, &'static str),
}

/// `c=IN IP4 <address>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub address_type: String,
    pub address: String,
}

impl Connection {
    pub fn ip(ip: IpAddr) -> Connection {
        Connection {
            address_type: if ip.is_ipv4() { "IP4" } else { "IP6" }.into(),
            address: ip.to_string(),
        }
    }

    /// The address as an IP, if it is one (FQDNs are legal but unusable here).
    pub fn ip_addr(&self) -> Option<IpAddr> {
        // Multicast forms carry a `/ttl` suffix.
        let address = self.address.split('/').next().unwrap_or("");
        address.parse().ok()
    }

    /// RFC 2543 hold: `c=IN IP4 0.0.0.0`.
    pub fn is_hold(&self) -> bool {
        self.ip_addr().is_some_and(|ip| ip.is_unspecified())
    }
}

/// `a=name[:value]`, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub name: String,
    pub value: Option<String>,
}

impl Attribute {
    pub fn flag(name: &str) -> Attribute {
        Attribute {
            name: name.into(),
            value: None,
        }
    }

    pub fn value(name: &str, value: impl Into<String>) -> Attribute {
        Attribute {
            name: name.into(),
            value: Some(value.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: String,
    pub session_version: u64,
    pub address_type: String,
    pub address: String,
}

/// One `m=` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    pub media: String,
    pub port: u16,
    pub port_count: Option<u16>,
    pub proto: String,
    pub formats: Vec<String>,
    pub connection: Option<Connection>,
    pub bandwidth: Vec<String>,
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map(|a| a.value.as_deref().unwrap_or(""))
    }

    /// `a=rtpmap:<pt> <encoding>/<clock>[/<channels>]` for a payload type.
    pub fn rtpmap(&self, payload_type: u8) -> Option<(&str, u32)> {
        self.attributes
            .iter()
            .filter(|a| a.name.eq_ignore_ascii_case("rtpmap"))
            .filter_map(|a| a.value.as_deref())
            .find_map(|value| {
                let (pt, rest) = value.trim().split_once(char::is_whitespace)?;
                if pt.parse::<u8>().ok()? != payload_type {
                    return None;
                }
                let mut parts = rest.trim().split('/');
                let encoding = parts.next()?;
                let clock = parts.next()?.trim().parse().ok()?;
                Some((encoding, clock))
            })
    }

    /// Payload types in `m=` order (non-numeric formats skipped).
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse::<u8>().ok())
    }

    /// The section's direction attribute, sendrecv when absent.
    pub fn direction(&self) -> Direction {
        self.attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_attribute(&a.name))
            .unwrap_or(Direction::SendRecv)
    }

    pub fn ptime_ms(&self) -> Option<u32> {
        self.attribute("ptime")?.trim().parse().ok()
    }
}

/// A whole SDP document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    pub session_name: String,
    pub connection: Option<Connection>,
    pub bandwidth: Vec<String>,
    pub timing: String,
    pub attributes: Vec<Attribute>,
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// Parses an SDP body. Lenient: see the module comment.
    pub fn parse(bytes: &[u8]) -> Result<SessionDescription, SdpError> {
        if bytes.len() > MAX_SDP_BYTES {
            return Err(SdpError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotText)?;
        let mut lines = text
            .split('\n')
            .map(|l| l.trim_end_matches('\r').trim())
            .filter(|l| !l.is_empty());
        match lines.next() {
            None => return Err(SdpError::Empty),
            Some(first) if first.starts_with("v=") => {}
            Some(_) => return Err(SdpError::NoVersion),
        }
        let mut sdp = SessionDescription {
            origin: Origin {
                username: "-".into(),
                session_id: "0".into(),
                session_version: 0,
                address_type: "IP4".into(),
                address: "0.0.0.0".into(),
            },
            session_name: "-".into(),
            connection: None,
            bandwidth: Vec::new(),
            timing: "0 0".into(),
            attributes: Vec::new(),
            media: Vec::new(),
        };
        let mut attribute_count = 0usize;
        for line in lines {
            let Some((kind, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let in_media = !sdp.media.is_empty();
            match kind.trim() {
                "o" => {
                    let f: Vec<&str> = value.split_whitespace().collect();
                    if let [user, id, version, _net, addr_type, addr, ..] = f[..] {
                        sdp.origin = Origin {
                            username: user.into(),
                            session_id: id.into(),
                            session_version: version.parse().unwrap_or(0),
                            address_type: addr_type.into(),
                            address: addr.into(),
                        };
                    }
                }
                "s" => sdp.session_name = value.into(),
                "t" => sdp.timing = value.into(),
                "c" => {
                    if let Some(connection) = parse_connection(value) {
                        match sdp.media.last_mut() {
                            Some(media) => media.connection = Some(connection),
                            None => sdp.connection = Some(connection),
                        }
                    }
                }
                "b" => match sdp.media.last_mut() {
                    Some(media) => media.bandwidth.push(value.into()),
                    None => sdp.bandwidth.push(value.into()),
                },
                "m" => {
                    if sdp.media.len() >= MAX_MEDIA {
                        return Err(SdpError::TooMany(MAX_MEDIA, "m= lines"));
                    }
                    sdp.media.push(parse_media(value)?);
                }
                "a" => {
                    attribute_count += 1;
                    if attribute_count > MAX_ATTRIBUTES {
                        return Err(SdpError::TooMany(MAX_ATTRIBUTES, "a= lines"));
                    }
                    let attribute = match value.split_once(':') {
                        Some((name, v)) => Attribute::value(name.trim(), v),
                        None => Attribute::flag(value),
                    };
                    match sdp.media.last_mut() {
                        Some(media) if in_media => media.attributes.push(attribute),
                        _ => sdp.attributes.push(attribute),
                    }
                }
                // i=, u=, e=, p=, z=, k=, r=: not needed to answer audio.
                _ => {}
            }
        }
        Ok(sdp)
    }

    /// The connection address that applies to a media section.
    pub fn connection_for<'a>(&'a self, media: &'a MediaDescription) -> Option<&'a Connection> {
        media.connection.as_ref().or(self.connection.as_ref())
    }

    /// Session-level direction attribute, if any.
    pub fn session_direction(&self) -> Option<Direction> {
        self.attributes
            .iter()
            .rev()
            .find_map(|a| Direction::from_attribute(&a.name))
    }
}

fn parse_connection(value: &str) -> Option<Connection> {
    let mut fields = value.split_whitespace();
    let _net = fields.next()?;
    Some(Connection {
        address_type: fields.next()?.into(),
        address: fields.next()?.into(),
    })
}

fn parse_media(value: &str) -> Result<MediaDescription, SdpError> {
    let bad = || SdpError::BadMedia(value.chars().take(80).collect());
    let mut fields = value.split_whitespace();
    let media = fields.next().ok_or_else(bad)?;
    let port_field = fields.next().ok_or_else(bad)?;
    let (port, port_count) = match port_field.split_once('/') {
        Some((p, n)) => (p, Some(n.parse().map_err(|_| bad())?)),
        None => (port_field, None),
    };
    let port = port.parse().map_err(|_| bad())?;
    let proto = fields.next().ok_or_else(bad)?;
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.len() > MAX_FORMATS {
        return Err(SdpError::TooMany(MAX_FORMATS, "formats on one m= line"));
    }
    Ok(MediaDescription {
        media: media.into(),
        port,
        port_count,
        proto: proto.into(),
        formats,
        connection: None,
        bandwidth: Vec::new(),
        attributes: Vec::new(),
    })
}

fn write_attributes(out: &mut String, attributes: &[Attribute]) -> fmt::Result {
    for attribute in attributes {
        match &attribute.value {
            Some(value) => write!(out, "a={}:{}\r\n", attribute.name, value)?,
            None => write!(out, "a={}\r\n", attribute.name)?,
        }
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    /// Serialises with CRLF line ends in RFC 4566 order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(256);
        let o = &self.origin;
        write!(
            out,
            "v=0\r\no={} {} {} IN {} {}\r\ns={}\r\n",
            o.username,
            o.session_id,
            o.session_version,
            o.address_type,
            o.address,
            if self.session_name.is_empty() {
                "-"
            } else {
                &self.session_name
            }
        )?;
        if let Some(c) = &self.connection {
            write!(out, "c=IN {} {}\r\n", c.address_type, c.address)?;
        }
        for b in &self.bandwidth {
            write!(out, "b={b}\r\n")?;
        }
        write!(out, "t={}\r\n", self.timing)?;
        write_attributes(&mut out, &self.attributes)?;
        for m in &self.media {
            write!(out, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(out, "/{n}")?;
            }
            write!(out, " {}", m.proto)?;
            for format in &m.formats {
                write!(out, " {format}")?;
            }
            out.push_str("\r\n");
            if let Some(c) = &m.connection {
                write!(out, "c=IN {} {}\r\n", c.address_type, c.address)?;
            }
            for b in &m.bandwidth {
                write!(out, "b={b}\r\n")?;
            }
            write_attributes(&mut out, &m.attributes)?;
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests;
