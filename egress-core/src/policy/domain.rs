//! Domain patterns with optional ports, matched on a reversed-label trie: a lookup walks the
//! name's labels once, whatever the number of rules.

use std::collections::HashMap;

use crate::target::Name;

/// Which ports a pattern covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ports {
    /// Every port.
    All,
    /// These ports.
    Some(Vec<u16>),
}

impl Ports {
    fn covers(&self, port: u16) -> bool {
        match self {
            Self::All => true,
            Self::Some(ports) => ports.contains(&port),
        }
    }

    /// The union of two port sets.
    fn merge(&mut self, other: &Ports) {
        match (&mut *self, other) {
            (Self::All, _) => {}
            (_, Self::All) => *self = Self::All,
            (Self::Some(mine), Self::Some(theirs)) => {
                for port in theirs {
                    if !mine.contains(port) {
                        mine.push(*port);
                    }
                }
            }
        }
    }
}

/// The shape of a pattern's name part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Form {
    /// `example.com`: that name.
    Exact,
    /// `*.example.com`: names strictly below it, at any depth.
    Below,
    /// `.example.com`: the name and every name below it.
    AndBelow,
    /// `*`: every name.
    Everything,
}

/// One parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pattern {
    pub(super) form: Form,
    /// The normalised base name (empty for `*`).
    pub(super) base: String,
    pub(super) ports: Ports,
}

/// Parses `name-pattern[:port,port...]`. Unicode names become A-labels (idna).
pub(super) fn parse_pattern(text: &str) -> Result<Pattern, String> {
    let (name, ports) = match text.rsplit_once(':') {
        Some((name, ports)) => (name, parse_ports(ports)?),
        None => (text, Ports::All),
    };
    let (form, base) = if name == "*" {
        (Form::Everything, "")
    } else if let Some(base) = name.strip_prefix("*.") {
        (Form::Below, base)
    } else if let Some(base) = name.strip_prefix('.') {
        (Form::AndBelow, base)
    } else {
        (Form::Exact, name)
    };
    if form == Form::Everything {
        return Ok(Pattern {
            form,
            base: String::new(),
            ports,
        });
    }
    if base.contains('*') {
        return Err("`*` is only allowed as a whole first label (`*.example.com`) or alone".into());
    }
    let ascii = if base.is_ascii() {
        base.to_owned()
    } else {
        idna::domain_to_ascii(base)
            .map_err(|_| format!("`{base}` is not a valid internationalised name"))?
    };
    let name = Name::from_ascii(ascii.as_bytes()).map_err(|e| format!("`{base}`: {e}"))?;
    Ok(Pattern {
        form,
        base: name.as_str().to_owned(),
        ports,
    })
}

/// Parses `443` or `443,8443`: decimal ports from 1 to 65535, no sign or leading zero.
fn parse_ports(text: &str) -> Result<Ports, String> {
    let mut ports = Vec::new();
    for item in text.split(',') {
        let valid = !item.is_empty()
            && item.len() <= 5
            && !item.starts_with('0')
            && item.bytes().all(|b| b.is_ascii_digit());
        match item.parse::<u16>() {
            Ok(port) if valid => ports.push(port),
            _ => return Err(format!("`{item}` is not a port (1 to 65535)")),
        }
    }
    Ok(Ports::Some(ports))
}

/// One trie node: a label's rules and its children, keyed by the next label to the left.
#[derive(Debug, Clone, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    /// Rules covering exactly this name.
    exact: Option<Ports>,
    /// Rules covering every name strictly below this one.
    below: Option<Ports>,
}

/// A set of patterns, matched in one walk over a name's labels.
#[derive(Debug, Clone, Default)]
pub(super) struct DomainSet {
    root: Node,
    len: usize,
}

/// What a set says about a name and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Match {
    /// No pattern names this host.
    None,
    /// A pattern names the host, but none of them covers the port.
    NameOnly,
    /// A pattern covers host and port.
    Covered,
}

impl DomainSet {
    pub(super) fn insert(&mut self, pattern: &Pattern) {
        self.len += 1;
        let mut node = &mut self.root;
        if !pattern.base.is_empty() {
            for label in pattern.base.rsplit('.') {
                node = node.children.entry(label.into()).or_default();
            }
        }
        let slots: &[fn(&mut Node) -> &mut Option<Ports>] = match pattern.form {
            Form::Exact => &[|n| &mut n.exact],
            Form::Below | Form::Everything => &[|n| &mut n.below],
            Form::AndBelow => &[|n| &mut n.exact, |n| &mut n.below],
        };
        for slot in slots {
            match slot(node) {
                Some(ports) => ports.merge(&pattern.ports),
                empty => *empty = Some(pattern.ports.clone()),
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Matches a name (`None` for an IP literal, which only `*` patterns cover).
    pub(super) fn lookup(&self, name: Option<&Name>, port: u16) -> Match {
        let mut result = Match::None;
        let mut note = |ports: &Option<Ports>| {
            if let Some(ports) = ports {
                if ports.covers(port) {
                    result = Match::Covered;
                } else if result == Match::None {
                    result = Match::NameOnly;
                }
            }
        };
        let mut node = &self.root;
        let Some(name) = name else {
            note(&node.below);
            return result;
        };
        for label in name.as_str().rsplit('.') {
            note(&node.below);
            match node.children.get(label) {
                Some(child) => node = child,
                None => return result,
            }
        }
        note(&node.exact);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(patterns: &[&str]) -> DomainSet {
        let mut set = DomainSet::default();
        for p in patterns {
            set.insert(&parse_pattern(p).unwrap());
        }
        set
    }

    fn lookup(set: &DomainSet, name: &str, port: u16) -> Match {
        set.lookup(Some(&name.parse().unwrap()), port)
    }

    #[test]
    fn each_form_matches_what_it_says() {
        let s = set(&["exact.example", "*.below.example", ".both.example"]);
        let cases = [
            ("exact.example", Match::Covered),
            ("a.exact.example", Match::None),
            ("below.example", Match::None),
            ("a.below.example", Match::Covered),
            ("a.b.below.example", Match::Covered),
            ("both.example", Match::Covered),
            ("x.y.both.example", Match::Covered),
            ("other.example", Match::None),
        ];
        for (name, want) in cases {
            assert_eq!(lookup(&s, name, 443), want, "{name}");
        }
        assert_eq!(lookup(&set(&["*"]), "anything.at.all", 1), Match::Covered);
    }

    #[test]
    fn ports_narrow_a_pattern() {
        let s = set(&["api.example:443,8443", "*.example:80"]);
        assert_eq!(lookup(&s, "api.example", 8443), Match::Covered);
        assert_eq!(lookup(&s, "api.example", 80), Match::Covered);
        assert_eq!(lookup(&s, "api.example", 22), Match::NameOnly);
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "**.example",
            "*example.com",
            "a.*.example",
            "example..com",
            "a b.example",
            "example.com:0",
            "example.com:70000",
            "example.com:+443",
            "example.com:0443",
            ":443",
            "10.0.0.1",
        ] {
            assert!(parse_pattern(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_pattern("Bücher.Example.").unwrap().base,
            "xn--bcher-kva.example"
        );
    }
}
