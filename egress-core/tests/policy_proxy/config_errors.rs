//! Bad policies are config errors that name their line; unknown keys too.

use egress_core::config::Config;
use egress_core::policy::{Policy, PolicyConfig};

/// Where the policy table goes.
#[derive(Debug, Clone, Copy)]
enum Table {
    Global,
    Sni,
    Http,
}

/// A whole config with `body` (lines) as the body of the policy table of `table`, and the
/// 1-based line the body starts on.
fn config_with(table: Table, body: &[String]) -> (String, usize) {
    let mut lines: Vec<String> = vec![
        "# policy config errors".into(),
        "[resolver]".into(),
        "nameservers = [\"127.0.0.1:9\"]".into(),
        String::new(),
    ];
    let mut start = 0;
    let mut push_policy = |lines: &mut Vec<String>, header: &str| {
        lines.push(header.into());
        start = lines.len() + 1;
        lines.extend(body.iter().cloned());
        lines.push(String::new());
    };
    if let Table::Global = table {
        push_policy(&mut lines, "[policy]");
    }
    lines.extend([
        "[[sni]]".into(),
        "listen = [\"127.0.0.1:0\"]".into(),
        "upstream_port = 443".into(),
    ]);
    if let Table::Sni = table {
        push_policy(&mut lines, "[sni.policy]");
    }
    lines.extend([
        String::new(),
        "[[http]]".into(),
        "listen = [\"127.0.0.2:0\"]".into(),
        "connect_ports = [443]".into(),
    ]);
    if let Table::Http = table {
        push_policy(&mut lines, "[http.policy]");
    }
    lines.push(String::new());
    (lines.join("\n"), start)
}

/// Asserts `text` fails with every mistake on one of `lines` (at least one mistake).
#[track_caller]
fn assert_error_on(text: &str, lines: &[usize], what: &str) {
    match Config::from_toml(text) {
        Ok(_) => panic!("{what}: accepted\n{text}"),
        Err(e) => {
            assert!(!e.mistakes.is_empty(), "{what}: an error with no mistake");
            for mistake in &e.mistakes {
                assert!(
                    mistake.line.is_some_and(|l| lines.contains(&l)),
                    "{what}: {mistake} (want line {lines:?})\n{text}"
                );
            }
        }
    }
}

#[track_caller]
fn assert_ok(text: &str, what: &str) {
    if let Err(e) = Config::from_toml(text) {
        panic!("{what}: {e}\n{text}");
    }
}

/// Bad entries of each list, each checked bad by the policy engine itself first.
const BAD: &[(&str, &str)] = &[
    ("allow", "exa mple.com"),
    ("allow", "*example.com"),
    ("allow", "example.com:99999"),
    ("allow", "example.com:+443"),
    ("allow", "*.com"),
    ("deny", "foo..example.com"),
    ("deny", "example.com:"),
    ("allow_cidrs", "127.0.0.0/33"),
    ("deny_cidrs", "not-a-cidr"),
];

/// A good entry of the same list.
fn good(list: &str) -> &'static str {
    match list {
        "allow" | "deny" => "*.example.com:443,8443",
        _ => "127.0.0.0/8",
    }
}

#[test]
fn the_bad_entries_are_bad_for_the_policy_engine() {
    for (list, entry) in BAD {
        let with = |entries: Vec<String>| {
            let mut config = PolicyConfig::default();
            match *list {
                "allow" => config.allow = entries,
                "deny" => config.deny = entries,
                "allow_cidrs" => config.allow_cidrs = entries,
                _ => config.deny_cidrs = entries,
            }
            Policy::new(&config)
        };
        assert!(
            with(vec![(*entry).to_owned()]).is_err(),
            "{list} {entry:?} is accepted"
        );
        assert!(
            with(vec![good(list).to_owned()]).is_ok(),
            "{list} good entry refused"
        );
    }
}

#[test]
fn a_bad_pattern_or_range_is_an_error_on_its_line() {
    for table in [Table::Global, Table::Sni, Table::Http] {
        for (list, entry) in BAD {
            let what = format!("{table:?} {list} {entry:?}");
            // A filler line first, so that the bad one is not the table's first line.
            let body = |e: &str| {
                vec![
                    "mode = \"enforce\"".to_owned(),
                    format!("{list} = [\"{}\", \"{e}\"]", good(list)),
                    "allow_public_suffix_wildcards = false".to_owned(),
                ]
            };
            let (text, start) = config_with(table, &body(good(list)));
            assert_ok(&text, &format!("{what}: the control"));
            let (text, start_bad) = config_with(table, &body(entry));
            assert_eq!(start, start_bad);
            assert_error_on(&text, &[start + 1], &what);
        }
    }
}

/// In a multi-line array, the mistake is on the entry's line (or, at the least, on the
/// key's).
#[test]
fn a_bad_entry_in_a_multi_line_array_names_a_line_of_it() {
    for table in [Table::Global, Table::Sni, Table::Http] {
        let body = [
            "allow = [".to_owned(),
            "  \"api.example.com:443\",".to_owned(),
            "  \".github.com\",".to_owned(),
            "  \"bad pattern.example\",".to_owned(),
            "]".to_owned(),
        ];
        let (text, start) = config_with(table, &body);
        assert_error_on(&text, &[start + 3, start], &format!("{table:?}"));
    }
}

#[test]
fn a_public_suffix_wildcard_needs_the_opt_in() {
    for table in [Table::Global, Table::Sni, Table::Http] {
        let line = "allow = [\"*.com\", \".co.uk\"]".to_owned();
        let (text, start) = config_with(table, std::slice::from_ref(&line));
        assert_error_on(&text, &[start], &format!("{table:?}"));
        let opted = [line, "allow_public_suffix_wildcards = true".to_owned()];
        let (text, _) = config_with(table, &opted);
        assert_ok(&text, &format!("{table:?} opted in"));
    }
}

#[test]
fn unknown_keys_and_bad_values_in_a_policy_table_are_errors_on_their_line() {
    let cases = [
        "alow = [\"example.com\"]",
        "allow_cidr = [\"127.0.0.0/8\"]",
        "modes = \"report\"",
        "mode = \"enforcing\"",
        "mode = \"Report\"",
        "allow = \"example.com\"",
        "allow_public_suffix_wildcards = \"yes\"",
        "deny = [443]",
    ];
    for table in [Table::Global, Table::Sni, Table::Http] {
        for case in cases {
            let body = [
                "allow_cidrs = [\"127.0.0.0/8\"]".to_owned(),
                case.to_owned(),
                "deny_cidrs = [\"203.0.113.0/24\"]".to_owned(),
            ];
            let (text, start) = config_with(table, &body);
            assert_error_on(&text, &[start + 1], &format!("{table:?} {case}"));
        }
        // Every documented key, in every table, is accepted.
        let body = [
            "allow = [\"api.example.com:443\", \"*.example.com:443,8443\", \".github.com\", \"*\"]"
                .to_owned(),
            "deny = [\"bad.example.com\"]".to_owned(),
            "allow_cidrs = [\"127.0.0.0/8\", \"::1/128\"]".to_owned(),
            "deny_cidrs = [\"203.0.113.0/24\"]".to_owned(),
            "allow_public_suffix_wildcards = false".to_owned(),
            "mode = \"report\"".to_owned(),
        ];
        let (text, _) = config_with(table, &body);
        assert_ok(&text, &format!("{table:?} every key"));
    }
}
