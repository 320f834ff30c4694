//! `[policy]`: the rules of the policy engine as config, globally and per listener, checked
//! entry by entry so that each bad entry names its line.

use serde::Deserialize;
use serde::de::{Deserializer, Error as _};
use toml::Spanned;

use super::{Error, Mistake};
use crate::policy::{Mode, Policy, PolicyConfig, PolicyError};

/// `[policy]` (global) or a listener's `policy` table, which replaces the global one for that
/// listener. Every key is optional; the empty table allows every public name on every port
/// and denies special-purpose addresses (loopback, private ranges, link-local, ...).
///
/// ```toml
/// [policy]
/// allow = ["api.example.com:443", "*.githubusercontent.com", ".pypi.org"]
/// deny = ["uploads.example.com"]
/// allow_cidrs = ["10.20.0.0/16"]
/// mode = "report"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PolicySection {
    /// Name patterns that may be reached, each optionally with `:port,port`: `example.com`,
    /// `*.example.com` (below it), `.example.com` (it and below), `*`. Default: empty, every
    /// public name.
    #[serde(default)]
    pub allow: Vec<Spanned<String>>,
    /// Name patterns that may not be reached; deny wins over allow. Default: empty.
    #[serde(default)]
    pub deny: Vec<Spanned<String>>,
    /// Ranges re-opened inside the default address deny list. Default: empty.
    #[serde(default)]
    pub allow_cidrs: Vec<Spanned<String>>,
    /// Ranges denied on top of the default list. Default: empty.
    #[serde(default)]
    pub deny_cidrs: Vec<Spanned<String>>,
    /// Accept wildcards over a public suffix such as `*.com`. Default: false.
    #[serde(default)]
    pub allow_public_suffix_wildcards: bool,
    /// `"enforce"`, or `"report"` to log denials and let connections through. Default:
    /// `"enforce"`.
    #[serde(default, deserialize_with = "deserialize_mode")]
    pub mode: Mode,
}

/// A document holding only a `[policy]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDocument {
    policy: PolicySection,
}

impl PolicySection {
    /// Reads the rules from TOML text: a `[policy]` table as in the binary's config, or the
    /// table's keys at the top level. Every bad entry is reported at its line.
    ///
    /// ```
    /// use egress_core::config::PolicySection;
    /// use egress_core::target::Host;
    ///
    /// let policy = PolicySection::from_toml("[policy]\nallow = [\"*.example.com:443\"]\n")?.build()?;
    /// let host = Host::Name("api.example.com".parse()?);
    /// assert!(policy.check_target(&host, 443).allowed);
    /// assert!(!policy.check_target(&host, 80).allowed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// An [`Error`] with the TOML syntax error or unknown key, or every invalid entry.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let syntax = |e: toml::de::Error| Error {
            mistakes: vec![Mistake::at(text, e.span(), e.message().trim_end())],
        };
        let table: toml::Table = toml::from_str(text).map_err(syntax)?;
        let section = if table.contains_key("policy") {
            toml::from_str::<PolicyDocument>(text)
                .map_err(syntax)?
                .policy
        } else {
            toml::from_str::<Self>(text).map_err(syntax)?
        };
        let mut mistakes = Vec::new();
        section.check(text, &mut mistakes);
        if mistakes.is_empty() {
            Ok(section)
        } else {
            Err(Error { mistakes })
        }
    }

    /// The rules as the policy engine takes them.
    pub fn policy_config(&self) -> PolicyConfig {
        let texts = |list: &[Spanned<String>]| list.iter().map(|e| e.get_ref().clone()).collect();
        PolicyConfig {
            allow: texts(&self.allow),
            deny: texts(&self.deny),
            allow_cidrs: texts(&self.allow_cidrs),
            deny_cidrs: texts(&self.deny_cidrs),
            allow_public_suffix_wildcards: self.allow_public_suffix_wildcards,
            mode: self.mode,
        }
    }

    /// Compiles the rules.
    ///
    /// # Errors
    ///
    /// The first bad entry; [`Config::from_toml`](super::Config::from_toml) has reported
    /// them all with their lines already.
    pub fn build(&self) -> Result<Policy, PolicyError> {
        Policy::new(&self.policy_config())
    }

    /// One mistake per bad entry, at its line.
    pub(super) fn check(&self, text: &str, mistakes: &mut Vec<Mistake>) {
        for error in Policy::errors(&self.policy_config()) {
            let list = match error.list {
                "allow" => &self.allow,
                "deny" => &self.deny,
                "allow_cidrs" => &self.allow_cidrs,
                _ => &self.deny_cidrs,
            };
            let span = list.get(error.index).map(Spanned::span);
            mistakes.push(Mistake::at(text, span, format!("policy {error}")));
        }
    }
}

fn deserialize_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    match &*text {
        "enforce" => Ok(Mode::Enforce),
        "report" => Ok(Mode::Report),
        other => Err(D::Error::custom(format_args!(
            "mode `{other}` is not one of \"enforce\", \"report\""
        ))),
    }
}
