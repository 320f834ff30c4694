//! The captured ClientHellos of `tests/data/client-hellos/`.

use crate::builder::{
    ALPN, ECH, SERVER_NAME, decode, expected_versions, handshake_message, sni_body,
};
use crate::{DEFAULT, Fed, bytewise, cycle, frame, record, run, split_at, summary, unframe, whole};
use egress_core::tls::{ClientHello, ClientHelloReader, Error, Progress};

macro_rules! vector_bytes {
    ($file:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/client-hellos/",
            $file
        ))
    };
}

/// One captured ClientHello and what the reader must find in it.
#[derive(Debug)]
pub(crate) struct Vector {
    pub(crate) name: &'static str,
    pub(crate) bytes: &'static [u8],
    pub(crate) sni: Option<&'static str>,
    pub(crate) alpn: &'static [&'static [u8]],
    pub(crate) versions: &'static [u16],
    pub(crate) ech: bool,
}

const TLS13_DOWN_TO_10: &[u16] = &[0x0304, 0x0303, 0x0302, 0x0301];
const TLS13_12: &[u16] = &[0x0304, 0x0303];
const H2_HTTP11: &[&[u8]] = &[b"h2", b"http/1.1"];

pub(crate) const VECTORS: &[Vector] = &[
    Vector {
        name: "curl-openssl3.bin",
        bytes: vector_bytes!("curl-openssl3.bin"),
        sni: Some("www.example.com"),
        alpn: H2_HTTP11,
        versions: TLS13_DOWN_TO_10,
        ech: false,
    },
    Vector {
        name: "openssl-s_client-tls13.bin",
        bytes: vector_bytes!("openssl-s_client-tls13.bin"),
        sni: Some("api.example.com"),
        alpn: &[],
        versions: TLS13_DOWN_TO_10,
        ech: false,
    },
    Vector {
        name: "openssl-s_client-tls12-only.bin",
        bytes: vector_bytes!("openssl-s_client-tls12-only.bin"),
        sni: Some("legacy.example.com"),
        alpn: &[],
        // No supported_versions: the single legacy_version.
        versions: &[0x0303],
        ech: false,
    },
    Vector {
        name: "openssl-no-sni.bin",
        bytes: vector_bytes!("openssl-no-sni.bin"),
        sni: None,
        alpn: &[],
        versions: TLS13_DOWN_TO_10,
        ech: false,
    },
    Vector {
        name: "python-ssl.bin",
        bytes: vector_bytes!("python-ssl.bin"),
        sni: Some("py.example.org"),
        alpn: &[],
        versions: TLS13_12,
        ech: false,
    },
    Vector {
        name: "chromium.bin",
        bytes: vector_bytes!("chromium.bin"),
        sni: Some("www.chromium-test.example"),
        alpn: H2_HTTP11,
        // Offered: 0x4a4a (GREASE), 0x0304, 0x0303.
        versions: TLS13_12,
        ech: true,
    },
    Vector {
        name: "go119.bin",
        bytes: vector_bytes!("go119.bin"),
        sni: Some("go.example.com"),
        alpn: &[],
        versions: TLS13_12,
        ech: false,
    },
    Vector {
        name: "node.bin",
        bytes: vector_bytes!("node.bin"),
        sni: Some("node.example.net"),
        alpn: &[],
        versions: TLS13_12,
        ech: false,
    },
];

/// The README's byte counts.
const README_SIZES: &[(&str, usize)] = &[
    ("curl-openssl3.bin", 517),
    ("openssl-s_client-tls13.bin", 321),
    ("openssl-s_client-tls12-only.bin", 215),
    ("openssl-no-sni.bin", 297),
    ("python-ssl.bin", 517),
    ("chromium.bin", 1965),
    ("go119.bin", 262),
    ("node.bin", 374),
];

pub(crate) fn vector(name: &str) -> &'static Vector {
    VECTORS.iter().find(|v| v.name == name).unwrap()
}

impl Vector {
    pub(crate) fn handshake(&self) -> Vec<u8> {
        unframe(self.bytes)
    }

    /// Checks the fields of a hello read from this vector (however framed) and that
    /// `raw()` is `raw`.
    #[track_caller]
    pub(crate) fn check(&self, hello: &ClientHello, raw: &[u8], how: &str) {
        let ctx = format!("{} ({how})", self.name);
        assert_eq!(
            hello.server_name().map(|n| n.as_str()),
            self.sni,
            "{ctx}: server_name"
        );
        let alpn: Vec<&[u8]> = hello.alpn().iter().map(Vec::as_slice).collect();
        assert_eq!(alpn, self.alpn, "{ctx}: alpn");
        assert_eq!(hello.versions(), self.versions, "{ctx}: versions");
        assert_eq!(hello.has_ech(), self.ech, "{ctx}: has_ech");
        assert!(
            hello.raw() == raw,
            "{ctx}: raw() differs from the bytes that carried the hello ({} vs {} bytes)",
            hello.raw().len(),
            raw.len()
        );
    }
}

/// Record payload sizes to re-frame the vectors with.
const FRAMINGS: &[&[usize]] = &[
    &[1],
    &[2],
    &[3],
    &[4],
    &[5],
    &[7],
    &[16],
    &[100],
    &[255],
    &[256],
    &[1000],
    &[1460],
    &[16384],
    &[1, 2, 3],
    &[300, 1],
    &[4, 1, 9000],
    &[1959, 1],
];

#[test]
fn vectors_are_what_the_readme_says() {
    assert_eq!(VECTORS.len(), README_SIZES.len());
    for (name, size) in README_SIZES {
        let v = vector(name);
        assert_eq!(v.bytes.len(), *size, "{name}: size");
        // One handshake record, as captured.
        assert_eq!(v.bytes[0], 22, "{name}");
        assert_eq!(
            usize::from(u16::from_be_bytes([v.bytes[3], v.bytes[4]])) + 5,
            v.bytes.len(),
            "{name}: one record"
        );
        let d = decode(&v.handshake());
        assert_eq!(
            d.server_name.as_deref(),
            v.sni.map(str::as_bytes),
            "{name}: decoded SNI"
        );
        let alpn: Vec<&[u8]> = d.alpn.iter().map(Vec::as_slice).collect();
        assert_eq!(alpn, v.alpn, "{name}: decoded ALPN");
        assert_eq!(
            expected_versions(&d),
            v.versions,
            "{name}: decoded versions"
        );
        assert_eq!(d.has_ech, v.ech, "{name}: decoded ECH");
        assert_eq!(d.extension_types.contains(&SERVER_NAME), v.sni.is_some());
        assert_eq!(d.extension_types.contains(&ALPN), !v.alpn.is_empty());
        assert_eq!(d.extension_types.contains(&ECH), v.ech);
    }
    // Chromium's GREASE: a GREASE supported_versions entry and GREASE extensions.
    let d = decode(&vector("chromium.bin").handshake());
    assert_eq!(d.supported_versions, Some(vec![0x4a4a, 0x0304, 0x0303]));
    assert_eq!(d.extension_types.first(), Some(&0x3a3a));
    assert_eq!(d.extension_types.last(), Some(&0x7a7a));
}

#[test]
fn each_vector_whole() {
    for v in VECTORS {
        let hello = whole(DEFAULT, v.bytes).hello(v.name);
        v.check(&hello, v.bytes, "whole");
        // Default reader, and the clone keeps everything.
        let mut reader = ClientHelloReader::default();
        match reader.feed(v.bytes) {
            Ok(Progress::Done(h)) => {
                v.check(&h, v.bytes, "default reader");
                let copy = h.clone();
                drop(h);
                v.check(&copy, v.bytes, "clone");
                assert!(!format!("{copy:?}").is_empty());
            }
            other => panic!("{}: default reader: {other:?}", v.name),
        }
    }
}

#[test]
fn each_vector_one_byte_per_feed() {
    for v in VECTORS {
        let hello = bytewise(DEFAULT, v.bytes).hello(v.name);
        v.check(&hello, v.bytes, "one byte per feed");
    }
}

#[test]
fn each_vector_split_in_two_feeds_at_every_offset() {
    for v in VECTORS {
        for at in 0..=v.bytes.len() {
            let hello = split_at(DEFAULT, v.bytes, at).hello(&format!("{} split at {at}", v.name));
            v.check(&hello, v.bytes, &format!("split at {at}"));
        }
    }
}

#[test]
fn each_vector_with_empty_feeds_in_between() {
    for v in VECTORS {
        let mut reader = ClientHelloReader::default();
        match reader.feed(&[]) {
            Ok(Progress::NeedMore { at_least }) => assert!(at_least >= 1),
            other => panic!("{}: empty first feed: {other:?}", v.name),
        }
        let hello =
            crate::feed_in(&mut reader, v.bytes, cycle(&[0, 1, 0, 0, 3, 0, 17])).hello(v.name);
        v.check(&hello, v.bytes, "empty feeds in between");
    }
}

/// Every proper prefix, fed at once to a fresh reader, needs more, and `at_least` never
/// claims more than what is really missing; the rest then completes the hello.
#[track_caller]
fn check_every_prefix(v: &Vector, input: &[u8], how: &str) {
    for p in 0..input.len() {
        let mut reader = ClientHelloReader::default();
        match reader.feed(&input[..p]) {
            Ok(Progress::NeedMore { at_least }) => {
                assert!(at_least >= 1, "{} ({how}): prefix {p}: at_least 0", v.name);
                assert!(
                    at_least <= input.len() - p,
                    "{} ({how}): prefix of {p} bytes: at_least {at_least} but only {} bytes are missing",
                    v.name,
                    input.len() - p
                );
            }
            other => panic!("{} ({how}): prefix of {p} bytes: {other:?}", v.name),
        }
        match reader.feed(&input[p..]) {
            Ok(Progress::Done(h)) => {
                v.check(&h, input, &format!("{how}, prefix {p} then the rest"))
            }
            other => panic!("{} ({how}): prefix {p} then the rest: {other:?}", v.name),
        }
    }
}

#[test]
fn every_proper_prefix_needs_more_and_at_least_never_overshoots() {
    for v in VECTORS {
        check_every_prefix(v, v.bytes, "as captured");
    }
}

#[test]
fn reframed_every_proper_prefix_needs_more() {
    for name in ["openssl-s_client-tls12-only.bin", "go119.bin"] {
        let v = vector(name);
        for sizes in [&[1][..], &[3], &[2, 40, 1]] {
            let framed = frame(&v.handshake(), sizes);
            check_every_prefix(v, &framed, &format!("records of {sizes:?}"));
        }
    }
}

#[test]
fn each_vector_reframed_into_records_of_many_sizes() {
    for v in VECTORS {
        let hs = v.handshake();
        for sizes in FRAMINGS {
            let framed = frame(&hs, sizes);
            let how = format!("records of {sizes:?}");
            let hello = whole(DEFAULT, &framed).hello(&format!("{} {how}", v.name));
            v.check(&hello, &framed, &format!("{how}, whole"));
            let hello = bytewise(DEFAULT, &framed).hello(&format!("{} {how}", v.name));
            v.check(&hello, &framed, &format!("{how}, one byte per feed"));
            let hello =
                run(DEFAULT, &framed, cycle(&[13, 1, 700])).hello(&format!("{} {how}", v.name));
            v.check(&hello, &framed, &format!("{how}, feeds of 13, 1, 700"));
        }
    }
}

#[test]
fn reframed_split_in_two_feeds_at_every_offset() {
    let v = vector("openssl-s_client-tls12-only.bin");
    for sizes in [&[1][..], &[7], &[100, 2]] {
        let framed = frame(&v.handshake(), sizes);
        for at in 0..=framed.len() {
            let hello = split_at(DEFAULT, &framed, at).hello(&format!("{sizes:?} split at {at}"));
            v.check(
                &hello,
                &framed,
                &format!("records of {sizes:?}, split at {at}"),
            );
        }
    }
}

#[test]
fn any_major_3_record_version_is_accepted() {
    for v in VECTORS {
        let hs = v.handshake();
        for version in [0x0300, 0x0301, 0x0302, 0x0303, 0x0304] {
            let input = record(22, version, &hs);
            let hello =
                whole(DEFAULT, &input).hello(&format!("{} record version {version:#06x}", v.name));
            v.check(&hello, &input, &format!("record version {version:#06x}"));
        }
        // Versions that differ from record to record are fine as well.
        let half = hs.len() / 2;
        let mut input = record(22, 0x0300, &hs[..half]);
        input.extend(record(22, 0x0304, &hs[half..]));
        let hello = whole(DEFAULT, &input).hello(v.name);
        v.check(&hello, &input, "two records, versions 0x0300 then 0x0304");
    }
}

/// What a client may send right after its hello, in the same read.
fn after_hello_extras() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("http", b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        ("change_cipher_spec", record(20, 0x0303, &[1])),
        ("application data", record(23, 0x0303, &[0xaa; 40])),
        ("alert", record(21, 0x0303, &[2, 40])),
        ("garbage", vec![0xff; 100]),
        ("empty handshake record", record(22, 0x0303, &[])),
        ("record overflow header", vec![22, 3, 3, 0xff, 0xff]),
        ("another hello", vector("go119.bin").bytes.to_vec()),
        ("one byte", vec![0x16]),
    ]
}

#[test]
fn bytes_after_the_hello_are_not_part_of_raw() {
    for v in VECTORS {
        for framing in [&[usize::MAX][..], &[1], &[100]] {
            let framed = if framing == [usize::MAX] {
                v.bytes.to_vec()
            } else {
                frame(&v.handshake(), framing)
            };
            for (what, extra) in after_hello_extras() {
                let mut input = framed.clone();
                input.extend_from_slice(&extra);
                let how = format!("records of {framing:?} followed by {what}");
                let hello = whole(DEFAULT, &input).hello(&format!("{} {how}", v.name));
                v.check(&hello, &framed, &format!("{how}, whole"));
                // The last byte of the hello arrives together with the extra bytes.
                let hello =
                    split_at(DEFAULT, &input, framed.len() - 1).hello(&format!("{} {how}", v.name));
                v.check(&hello, &framed, &format!("{how}, last byte with the extra"));
                // Byte by byte: Done exactly on the last byte of the hello.
                match bytewise(DEFAULT, &input) {
                    Fed::Done { hello, fed } => {
                        assert_eq!(fed, framed.len(), "{} {how}: Done late", v.name);
                        v.check(&hello, &framed, &format!("{how}, byte by byte"));
                    }
                    other => panic!("{} {how}: {other:?}", v.name),
                }
            }
        }
    }
}

#[test]
fn each_vector_at_the_size_limit() {
    for v in VECTORS {
        for framing in [&[usize::MAX][..], &[1], &[64]] {
            let framed = if framing == [usize::MAX] {
                v.bytes.to_vec()
            } else {
                frame(&v.handshake(), framing)
            };
            let n = framed.len();
            let how = format!("{} in records of {framing:?} ({n} bytes)", v.name);
            let hello = whole(n, &framed).hello(&format!("{how}, limit {n}"));
            v.check(&hello, &framed, &format!("{how}, limit = size"));
            let hello = bytewise(n, &framed).hello(&format!("{how}, limit {n}"));
            v.check(
                &hello,
                &framed,
                &format!("{how}, limit = size, byte by byte"),
            );
            for fed in [whole(n - 1, &framed), bytewise(n - 1, &framed)] {
                match fed {
                    Fed::Failed {
                        error: Error::TooLarge { limit },
                        ..
                    } => {
                        assert_eq!(limit, n - 1, "{how}");
                    }
                    other => panic!("{how}, limit {}: expected TooLarge, got {other:?}", n - 1),
                }
            }
        }
    }
}

/// A truncated body with a consistent handshake length: every cut is an error except at
/// the end of the compression methods (a legal hello without extensions, see
/// `malformed::hello_without_extensions_block`). In particular an extensions block that
/// is shorter than its length says must not read as "no extensions, no SNI".
#[test]
fn each_vector_truncated_body_at_every_offset_is_an_error() {
    for v in VECTORS {
        let hs = v.handshake();
        let body = &hs[4..];
        let d = decode(&hs);
        for cut in 0..body.len() {
            let input = record(
                22,
                0x0301,
                &handshake_message(1, u32::try_from(cut).unwrap(), &body[..cut]),
            );
            let fed = whole(DEFAULT, &input);
            if cut == d.compression_end {
                if let Fed::Done { hello, .. } = &fed {
                    assert_eq!(hello.server_name(), None, "{}: no extensions", v.name);
                }
                continue;
            }
            match fed {
                Fed::Failed {
                    error: Error::Malformed(_),
                    ..
                } => {}
                Fed::Failed {
                    error: Error::TooLarge { .. },
                    ..
                } if cut > d.compression_end => {}
                other => panic!(
                    "{}: body cut at {cut} of {}: expected Malformed, got {other:?}",
                    v.name,
                    body.len()
                ),
            }
        }
    }
}

/// Bytes after the extensions block, inside the handshake message: Malformed. The nasty
/// one is a whole server_name extension after the block.
#[test]
fn each_vector_with_bytes_after_the_extensions_block_is_malformed() {
    let mut evil_ext = SERVER_NAME.to_be_bytes().to_vec();
    let evil = sni_body(&[b"evil.example"]);
    evil_ext.extend_from_slice(&u16::try_from(evil.len()).unwrap().to_be_bytes());
    evil_ext.extend_from_slice(&evil);
    for v in VECTORS {
        let hs = v.handshake();
        for tail in [&[0u8][..], &[0, 0], &[0, 0, 0, 0], &evil_ext] {
            let mut body = hs[4..].to_vec();
            body.extend_from_slice(tail);
            let input = record(
                22,
                0x0301,
                &handshake_message(1, u32::try_from(body.len()).unwrap(), &body),
            );
            for fed in [whole(DEFAULT, &input), bytewise(DEFAULT, &input)] {
                match fed {
                    Fed::Failed {
                        error: Error::Malformed(_),
                        ..
                    } => {}
                    other => panic!(
                        "{}: {} bytes after the extensions: expected Malformed, got {other:?}",
                        v.name,
                        tail.len()
                    ),
                }
            }
        }
    }
}

#[test]
fn chromium_spans_two_tcp_segments_and_its_grease_ech_does_not_break_routing() {
    let v = vector("chromium.bin");
    // As two TCP segments of 1460 bytes and the rest.
    let hello = split_at(DEFAULT, v.bytes, 1460).hello("chromium in two segments");
    v.check(&hello, v.bytes, "two segments");
    assert!(hello.has_ech());
    assert_eq!(
        hello.server_name().map(|n| n.as_str()),
        Some("www.chromium-test.example")
    );
    // The reader keeps no state across readers.
    let again = whole(DEFAULT, v.bytes).hello("again");
    assert_eq!(summary(&again), summary(&hello));
}
