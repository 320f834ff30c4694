//! Port lists on allow and deny patterns.

use crate::Want::{Allow, Deny, Name, Port};
use crate::{policy, run_table};

#[test]
fn exact_with_one_port() {
    let p = policy(&["api.example.com:443"], &[]);
    run_table(
        "api.example.com:443",
        &p,
        &[
            ("api.example.com", 443, Allow),
            ("api.example.com", 80, Port),
            ("api.example.com", 444, Port),
            ("api.example.com", 442, Port),
            ("api.example.com", 4430, Port),
            ("api.example.com", 44, Port),
            ("api.example.com", 1, Port),
            ("api.example.com", 65535, Port),
            ("other.example.com", 443, Name),
            ("x.api.example.com", 443, Name),
            ("example.com", 443, Name),
        ],
    );
}

#[test]
fn wildcard_with_a_port_list() {
    let p = policy(&["*.example.com:443,8443"], &[]);
    run_table(
        "*.example.com:443,8443",
        &p,
        &[
            ("a.example.com", 443, Allow),
            ("a.example.com", 8443, Allow),
            ("a.b.example.com", 8443, Allow),
            ("a.example.com", 80, Port),
            ("a.example.com", 8080, Port),
            ("a.example.com", 844, Port),
            ("example.com", 443, Name),
            ("example.org", 443, Name),
        ],
    );
}

#[test]
fn leading_dot_and_star_with_ports() {
    let p = policy(&[".example.com:80,443"], &[]);
    run_table(
        ".example.com:80,443",
        &p,
        &[
            ("example.com", 80, Allow),
            ("a.example.com", 443, Allow),
            ("example.com", 8080, Port),
            ("a.example.com", 22, Port),
            ("example.org", 443, Name),
        ],
    );
    let p = policy(&["*:443"], &[]);
    run_table(
        "*:443",
        &p,
        &[
            ("example.com", 443, Allow),
            ("a.b.example.org", 443, Allow),
            ("example.com", 80, Port),
        ],
    );
}

#[test]
fn extreme_valid_ports() {
    let p = policy(
        &["a.example:1", "b.example:65535", "c.example:1,65535"],
        &[],
    );
    run_table(
        "1 and 65535",
        &p,
        &[
            ("a.example", 1, Allow),
            ("a.example", 2, Port),
            ("a.example", 65535, Port),
            ("b.example", 65535, Allow),
            ("b.example", 65534, Port),
            ("b.example", 1, Port),
            ("c.example", 1, Allow),
            ("c.example", 65535, Allow),
            ("c.example", 443, Port),
        ],
    );
}

#[test]
fn a_pattern_without_ports_covers_every_port() {
    let p = policy(&["example.com"], &[]);
    let rows: Vec<(&str, u16, crate::Want)> = [1u16, 22, 80, 443, 8443, 65535]
        .into_iter()
        .map(|port| ("example.com", port, Allow))
        .collect();
    run_table("no ports", &p, &rows);

    let p = policy(&[], &["example.com"]);
    let rows: Vec<(&str, u16, crate::Want)> = [1u16, 22, 80, 443, 8443, 65535]
        .into_iter()
        .map(|port| ("example.com", port, Deny))
        .collect();
    run_table("deny without ports", &p, &rows);
}

#[test]
fn the_same_pattern_twice_with_different_ports_allows_both() {
    // A trie that stores a rule's ports on its node must not let the second entry
    // overwrite the first.
    for allow in [
        &["example.com:443", "example.com:80"][..],
        &["example.com:80", "example.com:443"][..],
        &["EXAMPLE.com:443", "example.com.:80"][..],
    ] {
        let p = policy(allow, &[]);
        run_table(
            &format!("{allow:?}"),
            &p,
            &[
                ("example.com", 443, Allow),
                ("example.com", 80, Allow),
                ("example.com", 8080, Port),
            ],
        );
    }
    for allow in [
        &["*.example.com:443", "*.example.com:80"][..],
        &[".example.com:443", ".example.com:80"][..],
    ] {
        let p = policy(allow, &[]);
        run_table(
            &format!("{allow:?}"),
            &p,
            &[
                ("a.example.com", 443, Allow),
                ("a.example.com", 80, Allow),
                ("a.example.com", 22, Port),
            ],
        );
    }
}

#[test]
fn the_same_pattern_with_and_without_ports_covers_every_port() {
    for allow in [
        &["example.com:443", "example.com"][..],
        &["example.com", "example.com:443"][..],
    ] {
        let p = policy(allow, &[]);
        run_table(
            &format!("{allow:?}"),
            &p,
            &[("example.com", 443, Allow), ("example.com", 22, Allow)],
        );
    }
}

#[test]
fn different_forms_on_one_name_keep_their_own_ports() {
    // `example.com` and `*.example.com` meet at the same trie node.
    let p = policy(&["example.com:80", "*.example.com:443"], &[]);
    run_table(
        "exact:80 + *.:443",
        &p,
        &[
            ("example.com", 80, Allow),
            ("example.com", 443, Port),
            ("a.example.com", 443, Allow),
            ("a.example.com", 80, Port),
            ("a.b.example.com", 443, Allow),
        ],
    );
    let p = policy(&["*.example.com:443", "example.com:80"], &[]);
    run_table(
        "*.:443 + exact:80 (reverse order)",
        &p,
        &[
            ("example.com", 80, Allow),
            ("example.com", 443, Port),
            ("a.example.com", 443, Allow),
            ("a.example.com", 80, Port),
        ],
    );
}

#[test]
fn any_matching_allow_pattern_that_covers_the_port_allows() {
    // Interpretation: allow rules are a union of permissions, so a name matched by two
    // allow patterns is allowed on the ports of either.
    let p = policy(&["*.example.com:443", "api.example.com:8443"], &[]);
    run_table(
        "union over patterns",
        &p,
        &[
            ("api.example.com", 443, Allow),
            ("api.example.com", 8443, Allow),
            ("api.example.com", 80, Port),
            ("www.example.com", 8443, Port),
        ],
    );
    let p = policy(&[".example.com:80", "*:443"], &[]);
    run_table(
        "union with *",
        &p,
        &[
            ("example.com", 80, Allow),
            ("example.com", 443, Allow),
            ("example.org", 443, Allow),
            ("example.org", 80, Port),
            ("a.example.com", 22, Port),
        ],
    );
}

#[test]
fn deny_with_ports_denies_only_those_ports() {
    let p = policy(&[], &["example.com:25"]);
    run_table(
        "deny example.com:25",
        &p,
        &[
            ("example.com", 25, Deny),
            ("example.com", 443, Allow),
            ("example.com", 24, Allow),
            ("example.com", 26, Allow),
            ("example.com", 250, Allow),
            ("a.example.com", 25, Allow),
        ],
    );

    let p = policy(&[], &["*.example.com:25,465"]);
    run_table(
        "deny *.example.com:25,465",
        &p,
        &[
            ("a.example.com", 25, Deny),
            ("a.b.example.com", 465, Deny),
            ("a.example.com", 443, Allow),
            ("example.com", 25, Allow),
        ],
    );

    let p = policy(&["*.example.com"], &["*:25"]);
    run_table(
        "deny *:25 under an allow",
        &p,
        &[
            ("a.example.com", 25, Deny),
            ("a.example.com", 443, Allow),
            ("example.org", 443, Name),
        ],
    );

    let p = policy(&["api.example.com:443,8443"], &["api.example.com:8443"]);
    run_table(
        "deny one port of an allowed pair",
        &p,
        &[
            ("api.example.com", 443, Allow),
            ("api.example.com", 8443, Deny),
            ("api.example.com", 80, Port),
        ],
    );

    let p = policy(
        &[".example.com"],
        &[".example.com:22", "secret.example.com"],
    );
    run_table(
        "deny port under leading-dot allow",
        &p,
        &[
            ("example.com", 22, Deny),
            ("a.example.com", 22, Deny),
            ("a.example.com", 443, Allow),
            ("secret.example.com", 443, Deny),
            ("secret.example.com", 22, Deny),
        ],
    );
}

#[test]
fn deny_with_and_without_ports_on_the_same_pattern() {
    let p = policy(&[], &["example.com:25", "example.com"]);
    run_table(
        "deny :25 then all",
        &p,
        &[("example.com", 25, Deny), ("example.com", 443, Deny)],
    );
    let p = policy(&[], &["example.com", "example.com:25"]);
    run_table(
        "deny all then :25",
        &p,
        &[("example.com", 25, Deny), ("example.com", 443, Deny)],
    );
    let p = policy(&[], &["example.com:25", "example.com:465"]);
    run_table(
        "deny :25 and :465",
        &p,
        &[
            ("example.com", 25, Deny),
            ("example.com", 465, Deny),
            ("example.com", 443, Allow),
        ],
    );
}

#[test]
fn name_not_allowed_is_denied_name_even_on_a_listed_port() {
    let p = policy(&["api.example.com:443"], &[]);
    run_table(
        "DeniedName beats DeniedPort",
        &p,
        &[
            ("www.example.com", 443, Name),
            ("www.example.com", 80, Name),
        ],
    );
}

#[test]
fn star_without_ports_next_to_a_ported_exact_rule() {
    let p = policy(&["*", "example.com:443"], &[]);
    run_table(
        "* + example.com:443",
        &p,
        &[
            ("example.com", 80, Allow),
            ("example.com", 443, Allow),
            ("a.b", 22, Allow),
        ],
    );
    let p = policy(&["*:443", ".example.com"], &[]);
    run_table(
        "*:443 + .example.com",
        &p,
        &[
            ("a.example.com", 22, Allow),
            ("example.org", 443, Allow),
            ("example.org", 22, Port),
        ],
    );
}
