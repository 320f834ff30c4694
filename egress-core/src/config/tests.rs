use super::*;
use crate::target::Host;

fn mistakes(text: &str) -> Vec<String> {
    Config::from_toml(text)
        .unwrap_err()
        .mistakes
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn embedded_default_is_an_http_proxy_and_an_sni_proxy_on_loopback() {
    let config = Config::from_toml(DEFAULT_CONFIG).unwrap();
    assert_eq!(config.http.len(), 1);
    assert_eq!(
        *config.http[0].listen[0].get_ref(),
        "127.0.0.1:8080".parse().unwrap()
    );
    assert_eq!(config.http[0].options().connect_ports, [443, 563]);
    assert_eq!(config.sni.len(), 1);
    assert_eq!(
        *config.sni[0].listen[0].get_ref(),
        "127.0.0.1:8443".parse().unwrap()
    );
    assert_eq!(config.sni[0].upstream_port, UpstreamPort::Fixed(443));
    assert_eq!(config.resolver.nameservers, None);
}

#[test]
fn reads_the_design_example() {
    let config = Config::from_toml(
        r#"
[resolver]
nameservers = ["8.8.8.8:53", "1.1.1.1", "[2001:db8::1]:5353"]
ip_family = "ipv4"

[resolver.hosts]
"api.internal.example" = ["10.1.2.3"]

[[sni]]
listen = ["0.0.0.0:8443"]
upstream_port = 443

[[sni]]
listen = ["0.0.0.0:9443", "0.0.0.0:10443"]
upstream_port = "listener"
idle_timeout = "10m"
"#,
    )
    .unwrap();
    let resolver = config.resolver_config();
    assert_eq!(
        resolver.nameservers.unwrap(),
        [
            "8.8.8.8:53".parse().unwrap(),
            "1.1.1.1:53".parse().unwrap(),
            "[2001:db8::1]:5353".parse().unwrap()
        ]
    );
    assert_eq!(resolver.ip_family, IpFamily::Ipv4);
    let name: Name = "api.internal.example".parse().unwrap();
    assert_eq!(
        resolver.hosts[&name],
        ["10.1.2.3".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(config.sni[1].upstream_port, UpstreamPort::Listener);
    let options = config.sni[1].options();
    assert_eq!(options.relay.idle_timeout, Duration::from_secs(600));
    assert_eq!(options.connect_timeout, Duration::from_secs(10));
}

#[test]
fn unknown_keys_name_their_line() {
    let errors = mistakes("[[sni]]\nlisten = [\"127.0.0.1:1\"]\nupstream = 443\n");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("line 3, column 1: unknown field `upstream`"),
        "{}",
        errors[0]
    );
    let errors = mistakes("[resolvr]\n");
    assert!(errors[0].starts_with("line 1"), "{}", errors[0]);
}

#[test]
fn bad_values_name_their_line() {
    let cases = [
        (
            "[[sni]]\nlisten = [\"127.0.0.1:1\"]\nupstream_port = 0\n",
            3,
            "upstream_port 0",
        ),
        (
            "[[sni]]\nlisten = [\"127.0.0.1:1\"]\nupstream_port = \"listner\"\n",
            3,
            "\"listener\"",
        ),
        (
            "[[sni]]\nlisten = [\"127.0.0.1:1\"]\nupstream_port = 70000\n",
            3,
            "70000",
        ),
        ("[[sni]]\nlisten = [\"localhost:1\"]\n", 2, "socket address"),
        (
            "[resolver]\nip_family = \"v4\"\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n",
            2,
            "ip_family `v4`",
        ),
        (
            "[resolver]\nnameservers = [\"dns.google\"]\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n",
            2,
            "dns.google",
        ),
        (
            "[resolver.hosts]\n\"bad name\" = [\"10.0.0.1\"]\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n",
            2,
            "bad name",
        ),
        (
            "[[sni]]\nlisten = [\"127.0.0.1:1\"]\nidle_timeout = \"10\"\n",
            3,
            "no unit",
        ),
        (
            "[[sni]]\nlisten = [\"127.0.0.1:1\"]\nclient_hello_max_bytes = 100\n",
            3,
            "client_hello_max_bytes",
        ),
        (
            "[[sni]]\nlisten = [\"127.0.0.1:1\"]\nmax_connections = 0\n",
            3,
            "max_connections",
        ),
        (
            "[[sni]]\nlisten = [\"127.0.0.1:1\"]\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n",
            4,
            "listed twice",
        ),
    ];
    for (text, line, needle) in cases {
        let errors = mistakes(text);
        assert!(
            errors[0].starts_with(&format!("line {line},")),
            "{text:?}: {errors:?}"
        );
        assert!(errors[0].contains(needle), "{text:?}: {errors:?}");
    }
}

#[test]
fn every_semantic_mistake_is_reported() {
    let errors = mistakes(
        "[[sni]]\nlisten = [\"127.0.0.1:1\", \"127.0.0.1:1\"]\nmax_connections = 0\nclient_hello_max_bytes = 1\n",
    );
    assert_eq!(errors.len(), 3, "{errors:?}");
}

#[test]
fn a_config_without_listeners_is_refused() {
    assert!(mistakes("[resolver]\nip_family = \"both\"\n")[0].contains("no listener"));
}

#[test]
fn port_zero_may_repeat_and_listen_may_be_empty() {
    let config = Config::from_toml(
        "[[sni]]\nlisten = [\"127.0.0.1:0\", \"127.0.0.1:0\"]\n[[http]]\nlisten = []\n[[http]]\nlisten = [\"127.0.0.1:0\"]\n",
    )
    .unwrap();
    assert!(config.http[0].listen.is_empty());
    assert_eq!(config.group(ListenerKind::Sni, 0), Some(0));
    assert_eq!(config.group(ListenerKind::Sni, 1), None);
    assert_eq!(config.group(ListenerKind::Http, 0), Some(1));
    assert_eq!(config.group(ListenerKind::Http, 1), Some(2));
    assert_eq!(config.group(ListenerKind::Http, 2), None);
}

#[test]
fn policy_text_reads_as_a_table_or_as_top_level_keys() {
    let host = |name: &str| Host::Name(name.parse().unwrap());
    for text in [
        "[policy]\nallow = [\"*.example.com:443\"]\n",
        "allow = [\"*.example.com:443\"]\n",
    ] {
        let policy = PolicySection::from_toml(text).unwrap().build().unwrap();
        assert!(
            policy.check_target(&host("a.example.com"), 443).allowed,
            "{text}"
        );
        assert!(
            !policy.check_target(&host("a.example.com"), 80).allowed,
            "{text}"
        );
        assert!(
            !policy.check_target(&host("example.org"), 443).allowed,
            "{text}"
        );
    }
    let default = PolicySection::from_toml("").unwrap().build().unwrap();
    assert!(default.check_target(&host("example.org"), 1).allowed);

    let error = PolicySection::from_toml(
        "[policy]\nallow = [\"ok.example\", \"*.com\"]\ndeny_cidrs = [\"10/8\"]\n",
    )
    .unwrap_err();
    let lines: Vec<_> = error.mistakes.iter().map(|m| m.line).collect();
    assert_eq!(lines, [Some(2), Some(3)], "{error}");
    let error =
        PolicySection::from_toml("[policy]\nallow = [\"a\"]\n[[sni]]\nlisten = []\n").unwrap_err();
    assert!(error.to_string().contains("sni"), "{error}");
    let error = PolicySection::from_toml("alow = []\n").unwrap_err();
    assert_eq!(error.mistakes[0].line, Some(1), "{error}");
}

#[test]
fn a_static_host_without_addresses_is_refused() {
    let errors =
        mistakes("[resolver.hosts]\n\"a.example\" = []\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n");
    assert_eq!(errors, ["[resolver.hosts] \"a.example\" lists no address"]);
}

#[test]
fn http_blocks_read_their_knobs_and_share_the_address_check() {
    let config = Config::from_toml(
        "[[http]]\nlisten = [\"127.0.0.1:8080\"]\nconnect_ports = [443, 8443]\nheader_timeout = \"5s\"\nmax_headers = 50\n",
    )
    .unwrap();
    let options = config.http[0].options();
    assert_eq!(options.connect_ports, [443, 8443]);
    assert_eq!(options.header_timeout, Duration::from_secs(5));
    assert_eq!(options.limits.max_headers, 50);
    assert_eq!(options.keepalive_timeout, Duration::from_secs(60));

    let errors = mistakes(
        "[[http]]\nlisten = [\"127.0.0.1:1\"]\nconnect_ports = []\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n",
    );
    assert!(
        errors[0].starts_with("line 2,") && errors[0].contains("listed twice"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("line 3,") && errors[1].contains("connect_ports"),
        "{errors:?}"
    );
}

#[test]
fn http_methods_are_tokens() {
    let config = Config::from_toml(
        "[[http]]\nlisten = [\"127.0.0.1:1\"]\nmethods = [\"GET\", \"CONNECT\"]\n",
    )
    .unwrap();
    assert_eq!(
        config.http[0].options().methods,
        Some(vec!["GET".to_owned(), "CONNECT".to_owned()])
    );
    for bad in ["[]", "[\"\"]", "[\"GET POST\"]"] {
        let errors = mistakes(&format!(
            "[[http]]\nlisten = [\"127.0.0.1:1\"]\nmethods = {bad}\n"
        ));
        assert!(
            errors[0].starts_with("line 3,") && errors[0].contains("methods"),
            "{bad}: {errors:?}"
        );
    }
}

#[test]
fn policy_tables_global_and_per_listener() {
    let config = Config::from_toml(
        r#"
[policy]
allow = ["api.example.com:443", "*.example.org"]
deny = ["bad.example.org"]
allow_cidrs = ["10.0.0.0/8"]
mode = "report"

[[sni]]
listen = ["127.0.0.1:8443"]
default_host = "fallback.example.com"
[sni.policy]
allow = ["*"]

[[http]]
listen = ["127.0.0.1:8080"]
"#,
    )
    .unwrap();
    let global = config.policy.policy_config();
    assert_eq!(global.allow, ["api.example.com:443", "*.example.org"]);
    assert_eq!(global.deny, ["bad.example.org"]);
    assert_eq!(global.allow_cidrs, ["10.0.0.0/8"]);
    assert_eq!(global.mode, crate::policy::Mode::Report);
    let own = config.sni[0].policy.as_ref().unwrap().policy_config();
    assert_eq!(own.allow, ["*"]);
    // A listener's table replaces the global one: nothing is inherited.
    assert!(own.deny.is_empty() && own.allow_cidrs.is_empty());
    assert_eq!(own.mode, crate::policy::Mode::Enforce);
    assert!(config.http[0].policy.is_none());
    assert_eq!(
        config.sni[0].options().default_host.unwrap().as_str(),
        "fallback.example.com"
    );
}

#[test]
fn every_bad_policy_entry_names_its_line() {
    let text = r#"[policy]
allow = [
  "ok.example.com",
  "*.com",
  "bad..example",
]
allow_cidrs = ["10.0.0.1/8"]

[[http]]
listen = ["127.0.0.1:8080"]
[http.policy]
deny = ["x.example:0"]
"#;
    let found = mistakes(text);
    assert_eq!(found.len(), 4, "{found:#?}");
    for (mistake, line) in found.iter().zip([4, 5, 7, 12]) {
        assert!(
            mistake.starts_with(&format!("line {line},")),
            "{mistake} is not on line {line}"
        );
    }
    assert!(found[0].contains("public suffix"), "{}", found[0]);
    assert!(
        found[1].contains("policy allow entry `bad..example`"),
        "{}",
        found[1]
    );
}

#[test]
fn policy_keys_and_values_are_checked() {
    let unknown = mistakes(
        "[policy]\nallow = []\nalow = [\"x.example\"]\n[[http]]\nlisten = [\"127.0.0.1:1\"]\n",
    );
    assert!(unknown[0].starts_with("line 3,"), "{unknown:?}");
    let mode = mistakes("[policy]\nmode = \"audit\"\n[[http]]\nlisten = [\"127.0.0.1:1\"]\n");
    assert!(
        mode[0].starts_with("line 2,") && mode[0].contains("\"report\""),
        "{mode:?}"
    );
    let host = mistakes("[[sni]]\nlisten = [\"127.0.0.1:1\"]\ndefault_host = \"10.0.0.1\"\n");
    assert!(host[0].starts_with("line 3,"), "{host:?}");
}

#[test]
fn relay_table_sets_the_pipe_budget() {
    let config = Config::from_toml(
        "[relay]\nsplice = false\nmax_pipes = 64\npipe_size = 262144\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n",
    )
    .unwrap();
    assert!(!config.relay.splice);
    assert_eq!(*config.relay.max_pipes.get_ref(), 64);
    assert_eq!(*config.relay.pipe_size.get_ref(), 262_144);
    let defaults = Config::embedded_default();
    assert!(defaults.relay.splice);
    let found =
        mistakes("[relay]\nmax_pipes = 1\npipe_size = 100\n[[sni]]\nlisten = [\"127.0.0.1:1\"]\n");
    assert!(
        found[0].starts_with("line 2,") && found[0].contains("max_pipes"),
        "{found:?}"
    );
    assert!(
        found[1].starts_with("line 3,") && found[1].contains("pipe_size"),
        "{found:?}"
    );
}
