use super::*;

/// Real captures: (client, bytes, SNI).
const VECTORS: &[(&str, &[u8], Option<&str>)] = &[
    (
        "curl",
        include_bytes!("../../../tests/data/client-hellos/curl-openssl3.bin"),
        Some("www.example.com"),
    ),
    (
        "s_client 1.3",
        include_bytes!("../../../tests/data/client-hellos/openssl-s_client-tls13.bin"),
        Some("api.example.com"),
    ),
    (
        "s_client 1.2",
        include_bytes!("../../../tests/data/client-hellos/openssl-s_client-tls12-only.bin"),
        Some("legacy.example.com"),
    ),
    (
        "no sni",
        include_bytes!("../../../tests/data/client-hellos/openssl-no-sni.bin"),
        None,
    ),
    (
        "python",
        include_bytes!("../../../tests/data/client-hellos/python-ssl.bin"),
        Some("py.example.org"),
    ),
    (
        "chromium",
        include_bytes!("../../../tests/data/client-hellos/chromium.bin"),
        Some("www.chromium-test.example"),
    ),
    (
        "go",
        include_bytes!("../../../tests/data/client-hellos/go119.bin"),
        Some("go.example.com"),
    ),
    (
        "node",
        include_bytes!("../../../tests/data/client-hellos/node.bin"),
        Some("node.example.net"),
    ),
];

fn read_all(input: &[u8]) -> Result<ClientHello, Error> {
    match ClientHelloReader::default().feed(input)? {
        Progress::Done(hello) => Ok(hello),
        Progress::NeedMore { at_least } => panic!("needs {at_least} more"),
    }
}

#[test]
fn reads_every_capture() {
    for (who, bytes, sni) in VECTORS {
        let hello = read_all(bytes).unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(hello.server_name().map(Name::as_str), *sni, "{who}");
        assert_eq!(hello.raw(), *bytes, "{who}");
        assert_eq!(hello.has_ech(), *who == "chromium", "{who}");
    }
}

#[test]
fn chromium_offers_h2_and_tls13_without_grease() {
    let hello = read_all(VECTORS[5].1).unwrap();
    assert_eq!(hello.alpn(), [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(hello.versions(), [0x0304, 0x0303]);
}

#[test]
fn tls12_only_hello_reports_its_legacy_version() {
    let hello = read_all(VECTORS[2].1).unwrap();
    assert_eq!(hello.versions(), [0x0303]);
}

/// Every proper prefix needs more, and `at_least` never overshoots what is really missing.
#[test]
fn every_prefix_needs_more_then_the_same_answer() {
    for (who, bytes, _) in VECTORS {
        let whole = read_all(bytes).unwrap();
        for cut in 0..bytes.len() {
            let mut reader = ClientHelloReader::default();
            match reader.feed(&bytes[..cut]) {
                Ok(Progress::NeedMore { at_least }) => {
                    assert!(
                        at_least >= 1 && cut + at_least <= bytes.len(),
                        "{who} at {cut}"
                    );
                }
                other => panic!("{who}: prefix of {cut} gave {other:?}"),
            }
            match reader.feed(&bytes[cut..]) {
                Ok(Progress::Done(hello)) => assert_eq!(hello, whole, "{who} split at {cut}"),
                other => panic!("{who}: split at {cut} gave {other:?}"),
            }
        }
    }
}

#[test]
fn bytes_after_the_hello_are_left_unconsumed() {
    let bytes = VECTORS[0].1;
    let mut input = bytes.to_vec();
    input.extend_from_slice(&[23, 3, 3, 0, 1, 0]);
    let hello = read_all(&input).unwrap();
    assert_eq!(hello.raw(), bytes);
}

#[test]
fn refuses_other_protocols_at_the_first_byte() {
    let mut reader = ClientHelloReader::default();
    assert!(matches!(
        reader.feed(b"G"),
        Err(Error::NotTls { first_byte: b'G' })
    ));
    assert!(matches!(reader.feed(b"ET /"), Err(Error::Finished)));
    assert!(matches!(
        ClientHelloReader::default().feed(&[0x80, 0x2e, 0x01]),
        Err(Error::Sslv2)
    ));
    assert!(matches!(
        ClientHelloReader::default().feed(&[21, 3, 3, 0, 2, 2, 40]),
        Err(Error::Alert)
    ));
}

#[test]
fn refuses_a_record_beyond_the_limit_from_its_header() {
    let mut reader = ClientHelloReader::new(1024);
    assert!(matches!(
        reader.feed(&[22, 3, 1, 4, 0]),
        Err(Error::TooLarge { limit: 1024 })
    ));
    // A handshake length past the limit is refused before its bytes arrive.
    let mut reader = ClientHelloReader::new(1024);
    assert!(matches!(
        reader.feed(&[22, 3, 1, 0, 4, 1, 0, 4, 0]),
        Err(Error::TooLarge { limit: 1024 })
    ));
}

/// tls-parser reads an overlong extensions length as "no extensions" (PITFALLS): that hello
/// must fail, not route as a hello without SNI.
#[test]
fn overlong_extensions_length_is_an_error_not_a_missing_sni() {
    let bytes = VECTORS[0].1;
    let mut message = bytes[5..].to_vec();
    // Offset of the extensions length: header, version, random, session id, suites, compression.
    let mut at = 4 + 2 + 32;
    at += 1 + usize::from(message[at]);
    at += 2 + usize::from(u16::from_be_bytes([message[at], message[at + 1]]));
    at += 1 + usize::from(message[at]);
    let len = u16::from_be_bytes([message[at], message[at + 1]]) + 1;
    message[at..at + 2].copy_from_slice(&len.to_be_bytes());
    let mut input = bytes[..5].to_vec();
    input.extend_from_slice(&message);
    assert!(matches!(read_all(&input), Err(Error::Malformed(_))));
}

#[test]
fn grease_detection() {
    assert!(is_grease(0x0a0a) && is_grease(0xfafa) && is_grease(0x3a3a));
    assert!(!is_grease(0x0304) && !is_grease(0x0a1a) && !is_grease(0x1a0a));
}
