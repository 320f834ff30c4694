//! Where a connection goes: a normalised host and a port, and where the port came from.
//! Every stage after sniffing passes a [`Target`] on instead of re-reading the client's bytes.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Longest DNS name in presentation form without the trailing dot (RFC 1035 §2.3.4).
const MAX_NAME_LEN: usize = 253;
/// Longest DNS label (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// A normalised DNS host name: ASCII letters, digits and hyphens in dot-separated labels,
/// lower case, without a trailing dot, and not numeric (an IP address, or a spelling that
/// some resolvers turn into one, such as `127.1` or `0x7f000001`).
///
/// ```
/// use egress_core::target::Name;
/// let name: Name = "WWW.Example.COM.".parse().unwrap();
/// assert_eq!(name.as_str(), "www.example.com");
/// assert!("10.0.0.1".parse::<Name>().is_err());
/// assert!("bad name.example".parse::<Name>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(Box<str>);

/// Why a byte string is not a [`Name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty (or only a dot).
    Empty,
    /// The name is longer than 253 bytes.
    TooLong,
    /// A label is empty (two dots in a row, or a leading dot).
    EmptyLabel,
    /// A label is longer than 63 bytes.
    LabelTooLong,
    /// A byte that is not an ASCII letter, digit, hyphen or dot.
    InvalidByte(u8),
    /// A label starts or ends with a hyphen.
    Hyphen,
    /// The name is an IP address literal.
    IpLiteral,
    /// The last label is numeric, so resolvers may read the name as an IPv4 address.
    Numeric,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty host name"),
            Self::TooLong => write!(f, "host name longer than {MAX_NAME_LEN} bytes"),
            Self::EmptyLabel => f.write_str("host name has an empty label"),
            Self::LabelTooLong => write!(f, "host name label longer than {MAX_LABEL_LEN} bytes"),
            Self::InvalidByte(b) => write!(f, "invalid byte 0x{b:02x} in host name"),
            Self::Hyphen => f.write_str("host name label starts or ends with a hyphen"),
            Self::IpLiteral => f.write_str("host is an IP address literal, not a name"),
            Self::Numeric => f.write_str("host name is numeric (looks like an IPv4 address)"),
        }
    }
}

impl std::error::Error for NameError {}

impl Name {
    /// Checks and normalises a host name from the wire or a config file: ASCII only,
    /// lower-cased, one trailing dot removed.
    ///
    /// # Errors
    ///
    /// A [`NameError`] saying what is wrong with the name.
    pub fn from_ascii(bytes: &[u8]) -> Result<Self, NameError> {
        let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if let Some(&b) = bytes
            .iter()
            .find(|b| !(b.is_ascii_alphanumeric() || **b == b'-' || **b == b'.'))
        {
            // A ':' can only come from an IPv6 literal among otherwise valid bytes.
            if b == b':' && is_ip_literal(bytes) {
                return Err(NameError::IpLiteral);
            }
            return Err(NameError::InvalidByte(b));
        }
        if is_ip_literal(bytes) {
            return Err(NameError::IpLiteral);
        }
        let mut last = &[][..];
        for label in bytes.split(|b| *b == b'.') {
            if label.is_empty() {
                return Err(NameError::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(NameError::LabelTooLong);
            }
            if label.starts_with(b"-") || label.ends_with(b"-") {
                return Err(NameError::Hyphen);
            }
            last = label;
        }
        if is_numeric_label(last) {
            return Err(NameError::Numeric);
        }
        let lower: String = bytes
            .iter()
            .map(|b| char::from(b.to_ascii_lowercase()))
            .collect();
        Ok(Self(lower.into_boxed_str()))
    }

    /// The name as a string slice, lower case and without a trailing dot.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True for `1.2.3.4` and `::1` spellings that std parses as an address.
fn is_ip_literal(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| s.parse::<IpAddr>().is_ok())
}

/// True when a URL parser or glibc would read the label as a number: all decimal
/// digits, or `0x` followed by hex digits (WHATWG URL "ends in a number").
fn is_numeric_label(label: &[u8]) -> bool {
    let hex = label
        .strip_prefix(b"0x")
        .or_else(|| label.strip_prefix(b"0X"));
    match hex {
        Some(digits) => digits.iter().all(u8::is_ascii_hexdigit),
        None => label.iter().all(u8::is_ascii_digit),
    }
}

impl FromStr for Name {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_ascii(s.as_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse()
            .map_err(|e| serde::de::Error::custom(format_args!("`{text}`: {e}")))
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A destination host: a DNS name to resolve, or an IP address to dial as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A normalised DNS name.
    Name(Name),
    /// An IP address literal.
    Ip(IpAddr),
}

impl Host {
    /// Reads a host from the wire: an IPv4 address in canonical dotted-quad form, an IPv6
    /// address (without brackets), or a host name (see [`Name::from_ascii`]).
    ///
    /// ```
    /// use egress_core::target::Host;
    /// assert_eq!(Host::from_ascii(b"10.1.2.3").unwrap().to_string(), "10.1.2.3");
    /// assert_eq!(Host::from_ascii(b"::1").unwrap().to_string(), "::1");
    /// assert_eq!(Host::from_ascii(b"Example.COM").unwrap().to_string(), "example.com");
    /// assert!(Host::from_ascii(b"127.1").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// A [`NameError`] when the bytes are neither an address nor a valid host name; numeric
    /// spellings that are not canonical addresses (`127.1`, `0x7f000001`) are refused.
    pub fn from_ascii(bytes: &[u8]) -> Result<Self, NameError> {
        match std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse::<IpAddr>().ok())
        {
            Some(ip) => Ok(Self::Ip(ip)),
            None => Name::from_ascii(bytes).map(Self::Name),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => fmt::Display::fmt(name, f),
            Self::Ip(ip) => fmt::Display::fmt(ip, f),
        }
    }
}

/// Where the upstream port of a [`Target`] came from, for logs and for policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortSource {
    /// A fixed port from the listener's configuration (`upstream_port = 443`).
    Fixed,
    /// The local port the client connected to (`upstream_port = "listener"`).
    Listener,
    /// The request named it: a CONNECT authority, an absolute URI or a Host header.
    Request,
    /// The scheme's default (80 for `http://`).
    SchemeDefault,
}

/// The destination of one proxied connection: a host and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The host to resolve or dial.
    pub host: Host,
    /// The upstream TCP port.
    pub port: u16,
    /// Where `port` came from.
    pub port_source: PortSource,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
            host => write!(f, "{host}:{}", self.port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_one_trailing_dot() {
        assert_eq!(
            Name::from_ascii(b"A.Example.COM.").unwrap().as_str(),
            "a.example.com"
        );
        assert_eq!(
            Name::from_ascii(b"a.example.com.."),
            Err(NameError::EmptyLabel)
        );
    }

    #[test]
    fn rejects_what_is_not_a_host_name() {
        let cases: &[(&[u8], NameError)] = &[
            (b"", NameError::Empty),
            (b".", NameError::Empty),
            (b"a..b", NameError::EmptyLabel),
            (b".a", NameError::EmptyLabel),
            (b"a b.example", NameError::InvalidByte(b' ')),
            (b"a\0.example", NameError::InvalidByte(0)),
            (b"caf\xc3\xa9.example", NameError::InvalidByte(0xc3)),
            (b"a_b.example", NameError::InvalidByte(b'_')),
            (b"-a.example", NameError::Hyphen),
            (b"a-.example", NameError::Hyphen),
            (b"10.1.2.3", NameError::IpLiteral),
            (b"::1", NameError::IpLiteral),
            (b"::ffff:127.0.0.1", NameError::IpLiteral),
            (b"127.1", NameError::Numeric),
            (b"2130706433", NameError::Numeric),
            (b"0x7f000001", NameError::Numeric),
            (b"0177.0.0.1", NameError::Numeric),
            (b"a.example.123", NameError::Numeric),
        ];
        for (input, want) in cases {
            assert_eq!(
                Name::from_ascii(input),
                Err(*want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn enforces_length_limits() {
        let label = "a".repeat(63);
        assert!(Name::from_ascii(format!("{label}.example").as_bytes()).is_ok());
        let long_label = "a".repeat(64);
        assert_eq!(
            Name::from_ascii(format!("{long_label}.example").as_bytes()),
            Err(NameError::LabelTooLong)
        );
        let long = ["abcdefghi"; 26].join(".");
        assert_eq!(long.len(), 259);
        assert_eq!(Name::from_ascii(long.as_bytes()), Err(NameError::TooLong));
    }

    #[test]
    fn accepts_digits_outside_the_last_label() {
        assert!(Name::from_ascii(b"1.example.com").is_ok());
        assert!(Name::from_ascii(b"0x1.example").is_ok());
        assert!(Name::from_ascii(b"a.b0x").is_ok());
    }
}
