//! Crafted inputs: every way to be refused, each checked whole, one byte per feed, split
//! in two at every offset and (for faults inside the handshake message) re-framed into
//! records of several sizes; and crafted hellos that must be accepted.

use crate::builder::{
    ALPN, ECH, HelloBuilder, PADDING, SERVER_NAME, SUPPORTED_VERSIONS, alpn_body, sni_body,
    sni_body_typed, versions_body, with_u16_len,
};
use crate::{
    Answer, Cases, DEFAULT, Fed, bytewise, cycle, error_key, frame, record, run, split_at, summary,
    whole,
};
use egress_core::target::{Name, NameError};
use egress_core::tls::{ClientHello, ClientHelloReader, Error, Progress};

// ---------------------------------------------------------------------------------------
// Runners
// ---------------------------------------------------------------------------------------

/// Runs `input` whole, one byte per feed, split in two at every offset and in irregular
/// feeds: every run must end in an error accepted by `ok`, always the same variant.
/// Returns that variant's key.
#[track_caller]
fn expect_error(name: &str, input: &[u8], max: usize, ok: &dyn Fn(&Error) -> bool) -> String {
    let key = match whole(max, input) {
        Fed::Failed { error, .. } => {
            assert!(ok(&error), "{name}: whole: wrong error {error:?}");
            error_key(&error)
        }
        other => panic!("{name}: whole: expected an error, got {other:?}"),
    };
    let check = |fed: Fed, how: &str| match fed {
        Fed::Failed { error, .. } => {
            assert!(ok(&error), "{name} ({how}): wrong error {error:?}");
            assert_eq!(
                error_key(&error),
                key,
                "{name} ({how}): not the error of the whole input"
            );
        }
        other => panic!("{name} ({how}): expected an error, got {other:?}"),
    };
    check(bytewise(max, input), "one byte per feed");
    check(run(max, input, cycle(&[3, 0, 1, 7])), "feeds of 3, 0, 1, 7");
    let step = (input.len() / 2000).max(1);
    for at in (0..=input.len()).step_by(step) {
        check(split_at(max, input, at), &format!("split at {at}"));
    }
    key
}

/// A fault inside the handshake message: the same error in one record and re-framed into
/// records of 1, 2, 3, 5 and 64 bytes.
#[track_caller]
fn expect_handshake_error(name: &str, handshake: &[u8], max: usize, ok: &dyn Fn(&Error) -> bool) {
    let key = expect_error(name, &record(22, 0x0301, handshake), max, ok);
    for sizes in [&[1][..], &[2], &[3], &[5], &[64]] {
        let k = expect_error(
            &format!("{name}, records of {sizes:?}"),
            &frame(handshake, sizes),
            max,
            ok,
        );
        assert_eq!(
            k, key,
            "{name}: records of {sizes:?} give another error than one record"
        );
    }
}

/// [`expect_error`] as one case of `cases`.
fn check_error(
    cases: &mut Cases,
    name: &str,
    input: &[u8],
    max: usize,
    ok: &dyn Fn(&Error) -> bool,
) {
    cases.case(name, || {
        expect_error(name, input, max, ok);
    });
}

/// [`expect_handshake_error`] as one case of `cases`.
fn check_handshake_error(
    cases: &mut Cases,
    name: &str,
    handshake: &[u8],
    max: usize,
    ok: &dyn Fn(&Error) -> bool,
) {
    cases.case(name, || expect_handshake_error(name, handshake, max, ok));
}

/// A hello that must be read: the same answer whole, byte by byte, split anywhere, and in
/// records of several sizes (with `raw()` always the bytes fed).
#[track_caller]
fn check_ok(name: &str, handshake: &[u8], max: usize) -> ClientHello {
    let input = record(22, 0x0301, handshake);
    let hello = whole(max, &input).hello(name);
    assert_eq!(hello.raw(), &input[..], "{name}: raw");
    let want = without_raw(summary(&hello));
    let same = |fed: Fed, framed: &[u8], how: &str| {
        let h = fed.hello(&format!("{name} ({how})"));
        assert_eq!(h.raw(), framed, "{name} ({how}): raw");
        assert_eq!(without_raw(summary(&h)), want, "{name} ({how})");
    };
    same(bytewise(max, &input), &input, "one byte per feed");
    for at in 0..=input.len() {
        same(split_at(max, &input, at), &input, &format!("split at {at}"));
    }
    for sizes in [&[1][..], &[2], &[3], &[5], &[64]] {
        let framed = frame(handshake, sizes);
        same(
            whole(max, &framed),
            &framed,
            &format!("records of {sizes:?}"),
        );
        same(
            bytewise(max, &framed),
            &framed,
            &format!("records of {sizes:?}, byte by byte"),
        );
    }
    hello
}

/// The answer with `raw` emptied, to compare hellos read from differently framed input.
fn without_raw(answer: Answer) -> Answer {
    match answer {
        Answer::Hello {
            server_name,
            alpn,
            versions,
            has_ech,
            ..
        } => Answer::Hello {
            server_name,
            alpn,
            versions,
            has_ech,
            raw: Vec::new(),
        },
        other => other,
    }
}

fn good() -> HelloBuilder {
    HelloBuilder::with_sni(b"good.example").ext(ALPN, alpn_body(&[b"h2"]))
}

fn good_hs() -> Vec<u8> {
    good().handshake()
}

fn ext_bytes(ext_type: u16, body: &[u8]) -> Vec<u8> {
    let mut out = ext_type.to_be_bytes().to_vec();
    out.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn is_malformed(e: &Error) -> bool {
    matches!(e, Error::Malformed(_))
}

// ---------------------------------------------------------------------------------------
// Not a TLS ClientHello at all
// ---------------------------------------------------------------------------------------

#[test]
fn non_tls_bytes_are_not_tls() {
    let mut c = Cases::new();
    let cases: &[(&[u8], u8)] = &[
        (b"GET / HTTP/1.1\r\n", b'G'),
        (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", b'G'),
        (b"CONNECT example.com:443 HTTP/1.1\r\n\r\n", b'C'),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b'P'),
        (b"SSH-2.0-OpenSSH_9.6\r\n", b'S'),
        (&[0; 16], 0),
        (&[1, 3, 1, 0, 5, 1, 2, 3, 4, 5], 1),
        (&[0x7f, 3, 3, 0, 1, 0], 0x7f),
    ];
    for (input, first) in cases {
        check_error(
            &mut c,
            &format!("non-TLS {:?}", String::from_utf8_lossy(input)),
            input,
            DEFAULT,
            &|e| matches!(e, Error::NotTls { first_byte } if first_byte == first),
        );
    }
    c.finish();
}

#[test]
fn sslv2_hello_is_refused() {
    let mut c = Cases::new();
    // SSLv2-compatible CLIENT-HELLO: 2-byte header with the high bit set, msg type 1,
    // version 3.1, cipher-specs length 21, session-id length 0, challenge length 16.
    let mut v2 = vec![
        0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
    ];
    for spec in [
        [0x00, 0x00, 0x39],
        [0x00, 0x00, 0x38],
        [0x00, 0x00, 0x35],
        [0x00, 0x00, 0x33],
        [0x00, 0x00, 0x32],
        [0x00, 0x00, 0x2f],
        [0x00, 0x00, 0xff],
    ] {
        v2.extend_from_slice(&spec);
    }
    v2.extend_from_slice(&[0xab; 16]);
    assert_eq!(v2.len(), 2 + 0x2e);
    check_error(&mut c, "SSLv2 hello", &v2, DEFAULT, &|e| {
        matches!(e, Error::Sslv2)
    });
    check_error(&mut c, "0xff first", &[0xff; 20], DEFAULT, &|e| {
        matches!(e, Error::Sslv2)
    });
    check_error(
        &mut c,
        "0x81 first",
        &[0x81, 0x00, 0x01, 0x03, 0x01],
        DEFAULT,
        &|e| matches!(e, Error::Sslv2),
    );
    c.finish();
}

#[test]
fn alert_instead_of_hello() {
    let mut c = Cases::new();
    check_error(
        &mut c,
        "alert record",
        &record(21, 0x0303, &[2, 40]),
        DEFAULT,
        &|e| matches!(e, Error::Alert),
    );
    check_error(
        &mut c,
        "alert record 0x0301",
        &record(21, 0x0301, &[2, 70]),
        DEFAULT,
        &|e| matches!(e, Error::Alert),
    );
    // An alert followed by a hello is still refused.
    let mut input = record(21, 0x0303, &[1, 0]);
    input.extend(good().record());
    check_error(&mut c, "alert then hello", &input, DEFAULT, &|e| {
        matches!(e, Error::Alert)
    });
    c.finish();
}

#[test]
fn first_record_of_another_content_type() {
    let mut c = Cases::new();
    // change_cipher_spec, application_data, heartbeat as the very first record. Whether
    // that is `NotTls` (not a content type we accept first) or `UnexpectedRecord` is not
    // pinned by the spec.
    for (ct, payload) in [
        (20u8, vec![1u8]),
        (23, vec![0x17; 30]),
        (24, vec![1, 0, 3, 1, 2, 3]),
    ] {
        let mut input = record(ct, 0x0303, &payload);
        input.extend(good().record());
        check_error(
            &mut c,
            &format!("first record of type {ct}"),
            &input,
            DEFAULT,
            &|e| {
                matches!(e, Error::NotTls { first_byte } if *first_byte == ct)
                    || matches!(e, Error::UnexpectedRecord { content_type } if *content_type == ct)
            },
        );
    }
    c.finish();
}

#[test]
fn handshake_message_that_is_not_a_client_hello() {
    let mut c = Cases::new();
    for msg_type in [0u8, 2, 4, 11, 20, 0xff] {
        let mut b = good();
        b.msg_type = msg_type;
        check_handshake_error(
            &mut c,
            &format!("handshake type {msg_type}"),
            &b.handshake(),
            DEFAULT,
            &|e| matches!(e, Error::NotClientHello(t) if *t == msg_type),
        );
    }
    c.finish();
}

// ---------------------------------------------------------------------------------------
// Record layer
// ---------------------------------------------------------------------------------------

#[test]
fn record_version_with_another_major_byte() {
    let mut c = Cases::new();
    let hs = good_hs();
    for version in [0x0203u16, 0x0003, 0x0403, 0xfefd, 0x0000, 0x1603, 0x0103] {
        check_error(
            &mut c,
            &format!("record version {version:#06x}"),
            &record(22, version, &hs),
            DEFAULT,
            &|e| matches!(e, Error::BadRecordVersion(v) if *v == version),
        );
        // In the second record.
        let input = cat(&[
            &record(22, 0x0301, &hs[..10]),
            &record(22, version, &hs[10..]),
        ]);
        check_error(
            &mut c,
            &format!("second record version {version:#06x}"),
            &input,
            DEFAULT,
            &|e| matches!(e, Error::BadRecordVersion(v) if *v == version),
        );
    }
    c.finish();
}

/// The spec: `BadRecordVersion` is for "a record-layer version whose major byte is not
/// 3", so any 0x03xx passes the record layer (the captured vectors use 0x0301; see also
/// `vectors::any_major_3_record_version_is_accepted` for 0x0300 to 0x0304).
#[test]
fn record_version_with_major_byte_3_and_an_unusual_minor_byte_is_accepted() {
    let hs = good_hs();
    let mut c = Cases::new();
    for version in [0x0305u16, 0x0380, 0x03ff] {
        c.case(&format!("record version {version:#06x}"), || {
            let input = record(22, version, &hs);
            let hello = whole(DEFAULT, &input).hello(&format!("record version {version:#06x}"));
            assert_eq!(hello.raw(), &input[..]);
        });
    }
    c.finish();
}

#[test]
fn empty_handshake_record() {
    let mut c = Cases::new();
    let hs = good_hs();
    let first = cat(&[&record(22, 0x0301, &[]), &record(22, 0x0301, &hs)]);
    check_error(&mut c, "empty first record", &first, DEFAULT, &|e| {
        matches!(e, Error::EmptyRecord)
    });
    check_error(
        &mut c,
        "only an empty record",
        &record(22, 0x0301, &[]),
        DEFAULT,
        &|e| matches!(e, Error::EmptyRecord),
    );
    for at in [1, 4, 5, hs.len() - 1] {
        let input = cat(&[
            &record(22, 0x0301, &hs[..at]),
            &record(22, 0x0303, &[]),
            &record(22, 0x0303, &hs[at..]),
        ]);
        check_error(
            &mut c,
            &format!("empty record after {at} handshake bytes"),
            &input,
            DEFAULT,
            &|e| matches!(e, Error::EmptyRecord),
        );
    }
    c.finish();
}

#[test]
fn record_longer_than_2_pow_14() {
    let mut c = Cases::new();
    let hs = good_hs();
    let big = 100_000;
    for len in [16_385u16, 0x8000, 0xffff] {
        let header = cat(&[&[22, 3, 1], &len.to_be_bytes()]);
        // Only the header and a few bytes: the error must not wait for the record.
        let input = cat(&[&header, &hs]);
        check_error(
            &mut c,
            &format!("record of {len}"),
            &input,
            big,
            &|e| matches!(e, Error::RecordOverflow(n) if *n == usize::from(len)),
        );
        // The second record.
        let input = cat(&[
            &record(22, 0x0301, &hs[..20]),
            &[22, 3, 3],
            &len.to_be_bytes(),
            &hs[20..],
        ]);
        check_error(
            &mut c,
            &format!("second record of {len}"),
            &input,
            big,
            &|e| matches!(e, Error::RecordOverflow(n) if *n == usize::from(len)),
        );
        // With the default limit both RecordOverflow and TooLarge are right.
        check_error(
            &mut c,
            &format!("record of {len}, default limit"),
            &cat(&[&header, &hs]),
            DEFAULT,
            &|e| {
                matches!(e, Error::RecordOverflow(n) if *n == usize::from(len))
                    || matches!(e, Error::TooLarge { limit: DEFAULT })
            },
        );
    }
    c.finish();
}

#[test]
fn record_of_exactly_2_pow_14_and_a_hello_larger_than_one_record() {
    // A handshake message of exactly 16384 bytes in one record.
    let base = HelloBuilder::with_sni(b"big.example").ext(PADDING, Vec::new());
    let pad = 16_384 - base.handshake().len();
    let hs = HelloBuilder::with_sni(b"big.example")
        .ext(PADDING, vec![0; pad])
        .handshake();
    assert_eq!(hs.len(), 16_384);
    let hello = check_ok_big("16384-byte record", &record(22, 0x0301, &hs), 16_389);
    assert_eq!(hello.server_name().map(Name::as_str), Some("big.example"));
    // A 30000-byte handshake message in records of 2^14 and the rest.
    let hs = HelloBuilder::with_sni(b"bigger.example")
        .ext(PADDING, vec![0; 30_000 - 100])
        .handshake();
    let framed = frame(&hs, &[16_384]);
    assert_eq!(framed.len(), hs.len() + 10);
    let hello = check_ok_big("two records", &framed, 40_000);
    assert_eq!(
        hello.server_name().map(Name::as_str),
        Some("bigger.example")
    );
    // Too large for the default limit.
    match whole(DEFAULT, &framed) {
        Fed::Failed {
            error: Error::TooLarge { limit: DEFAULT },
            ..
        } => {}
        other => panic!("30000-byte hello with the default limit: {other:?}"),
    }
}

#[track_caller]
fn check_ok_big(name: &str, input: &[u8], max: usize) -> ClientHello {
    let hello = whole(max, input).hello(name);
    assert_eq!(hello.raw(), input, "{name}: raw");
    let again = run(max, input, cycle(&[1, 999, 1460])).hello(name);
    assert_eq!(summary(&again), summary(&hello), "{name}: split");
    hello
}

#[test]
fn claims_beyond_the_limit_fail_on_the_headers() {
    let mut c = Cases::new();
    // The record header alone claims more than the limit.
    check_error(
        &mut c,
        "record claims 200 of 100",
        &[22, 3, 1, 0, 200],
        100,
        &|e| matches!(e, Error::TooLarge { limit: 100 }),
    );
    check_error(
        &mut c,
        "record claims 16000 of 512",
        &[22, 3, 1, 0x3e, 0x80],
        512,
        &|e| matches!(e, Error::TooLarge { limit: 512 }),
    );
    // The handshake header claims more than the limit (the record itself is small).
    check_error(
        &mut c,
        "handshake claims 600 of 512",
        &[22, 3, 1, 0, 50, 1, 0, 0x02, 0x58],
        512,
        &|e| matches!(e, Error::TooLarge { limit: 512 }),
    );
    check_error(
        &mut c,
        "handshake claims 2^24-1 of 512",
        &[22, 3, 1, 0, 50, 1, 0xff, 0xff, 0xff],
        512,
        &|e| matches!(e, Error::TooLarge { limit: 512 }),
    );
    check_error(
        &mut c,
        "handshake claims 16384, default limit",
        &[22, 3, 1, 0, 50, 1, 0, 0x40, 0x00],
        DEFAULT,
        &|e| matches!(e, Error::TooLarge { limit: DEFAULT }),
    );
    // The handshake header split over four one-byte records.
    let input = frame(&[1, 0, 0x02, 0x58], &[1]);
    assert_eq!(input.len(), 24);
    check_error(
        &mut c,
        "handshake claims 600 of 512 in 1-byte records",
        &input,
        512,
        &|e| matches!(e, Error::TooLarge { limit: 512 }),
    );
    // A second record header that takes the total past the limit.
    let hs = good_hs();
    assert!(hs.len() + 5 <= 300);
    let input = cat(&[&record(22, 0x0301, &hs[..100]), &[22, 3, 3, 0, 250]]);
    check_error(&mut c, "second record claims past 300", &input, 300, &|e| {
        matches!(e, Error::TooLarge { limit: 300 })
    });
    c.finish();
}

/// A hello padded to exactly `raw_len` bytes in one record.
fn padded_record(raw_len: usize) -> Vec<u8> {
    let base = HelloBuilder::with_sni(b"pad.example")
        .ext(PADDING, Vec::new())
        .record()
        .len();
    let out = HelloBuilder::with_sni(b"pad.example")
        .ext(PADDING, vec![0; raw_len - base])
        .record();
    assert_eq!(out.len(), raw_len);
    out
}

#[test]
fn limit_boundary() {
    for n in [200usize, 1000, 4321] {
        let input = padded_record(n);
        let hello = whole(n, &input).hello(&format!("{n} bytes, limit {n}"));
        assert_eq!(hello.raw(), &input[..]);
        bytewise(n, &input).hello(&format!("{n} bytes, limit {n}, byte by byte"));
        for fed in [whole(n - 1, &input), bytewise(n - 1, &input)] {
            match fed {
                Fed::Failed {
                    error: Error::TooLarge { limit },
                    ..
                } => assert_eq!(limit, n - 1),
                other => panic!("{n} bytes, limit {}: {other:?}", n - 1),
            }
        }
    }
    // The default limit: 16384 bytes are fine, 16385 are not.
    let input = padded_record(DEFAULT);
    let mut reader = ClientHelloReader::default();
    match reader.feed(&input) {
        Ok(Progress::Done(h)) => assert_eq!(h.raw(), &input[..]),
        other => panic!("16384 bytes with the default reader: {other:?}"),
    }
    let input = padded_record(DEFAULT + 1);
    let mut reader = ClientHelloReader::default();
    match crate::feed_in(&mut reader, &input, cycle(&[1000])) {
        Fed::Failed {
            error: Error::TooLarge { limit: DEFAULT },
            ..
        } => {}
        other => panic!("16385 bytes with the default reader: {other:?}"),
    }
}

#[test]
fn handshake_data_after_the_client_hello_in_the_same_record() {
    let mut c = Cases::new();
    let hs = good_hs();
    let tails: &[(&str, &[u8])] = &[
        ("one byte", &[0]),
        ("hello_request", &[0, 0, 0, 0]),
        ("a second ClientHello", &hs),
    ];
    for (what, tail) in tails {
        let input = record(22, 0x0301, &cat(&[&hs, tail]));
        check_error(
            &mut c,
            &format!("hello + {what} in one record"),
            &input,
            DEFAULT,
            &|e| matches!(e, Error::TrailingHandshakeData),
        );
        // The hello's last bytes and the extra in the second record.
        for at in [1, 10, hs.len() - 1] {
            let input = cat(&[
                &record(22, 0x0301, &hs[..at]),
                &record(22, 0x0303, &cat(&[&hs[at..], tail])),
            ]);
            check_error(
                &mut c,
                &format!("hello + {what}, second record from {at}"),
                &input,
                DEFAULT,
                &|e| matches!(e, Error::TrailingHandshakeData),
            );
        }
    }
    c.finish();
}

#[test]
fn non_handshake_record_between_fragments() {
    let mut c = Cases::new();
    let hs = good_hs();
    for at in [1, 4, 5, 40, hs.len() - 1] {
        for (ct, payload) in [
            (20u8, vec![1u8]),
            (23, vec![0xaa; 20]),
            (24, vec![1, 0, 1, 9]),
        ] {
            let input = cat(&[
                &record(22, 0x0301, &hs[..at]),
                &record(ct, 0x0303, &payload),
                &record(22, 0x0303, &hs[at..]),
            ]);
            check_error(
                &mut c,
                &format!("record type {ct} after {at} handshake bytes"),
                &input,
                DEFAULT,
                &|e| matches!(e, Error::UnexpectedRecord { content_type } if *content_type == ct),
            );
        }
        let input = cat(&[
            &record(22, 0x0301, &hs[..at]),
            &record(21, 0x0303, &[2, 10]),
            &record(22, 0x0303, &hs[at..]),
        ]);
        check_error(
            &mut c,
            &format!("alert after {at} handshake bytes"),
            &input,
            DEFAULT,
            &|e| {
                matches!(
                    e,
                    Error::Alert | Error::UnexpectedRecord { content_type: 21 }
                )
            },
        );
        let input = cat(&[&record(22, 0x0301, &hs[..at]), b"GET / HTTP/1.1\r\n\r\n"]);
        check_error(
            &mut c,
            &format!("HTTP after {at} handshake bytes"),
            &input,
            DEFAULT,
            &|e| {
                matches!(
                    e,
                    Error::UnexpectedRecord { content_type: b'G' }
                        | Error::NotTls { first_byte: b'G' }
                        | Error::BadRecordVersion(0x4554)
                )
            },
        );
    }
    c.finish();
}

// ---------------------------------------------------------------------------------------
// Inside the ClientHello body
// ---------------------------------------------------------------------------------------

#[test]
fn session_id_longer_than_32() {
    let mut c = Cases::new();
    let mut b = good();
    b.session_id = vec![7; 33];
    check_handshake_error(
        &mut c,
        "session id of 33",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    let mut b = good();
    b.session_id_len = Some(33);
    check_handshake_error(
        &mut c,
        "session id length 33 over 32 bytes",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    let mut b = good();
    b.session_id_len = Some(255);
    check_handshake_error(
        &mut c,
        "session id length 255",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    c.finish();
}

#[test]
fn cipher_suites_of_odd_or_inconsistent_length() {
    let mut c = Cases::new();
    let mut b = good();
    b.cipher_suites = vec![0x13, 0x01, 0x13, 0x02, 0x13];
    check_handshake_error(
        &mut c,
        "5 bytes of cipher suites",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    let mut b = good();
    b.cipher_suites = vec![0x13];
    check_handshake_error(
        &mut c,
        "1 byte of cipher suites",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    let mut b = good();
    b.cipher_suites_len = Some(0xfffe);
    check_handshake_error(
        &mut c,
        "cipher suites length 0xfffe",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    let mut b = good();
    b.compression_len = Some(200);
    check_handshake_error(
        &mut c,
        "compression length 200",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    c.finish();
}

/// PITFALLS: tls-parser reads an extensions length that overruns the body as "no
/// extensions", which looks exactly like a hello without SNI.
#[test]
fn extensions_length_overrun_is_an_error_not_a_hello_without_sni() {
    let mut c = Cases::new();
    let overrun = |e: &Error| matches!(e, Error::Malformed(_) | Error::TooLarge { .. });
    let mut b = good();
    let real = u16::try_from(b.extensions_block().len()).unwrap();
    b.extensions_len = Some(real + 1);
    check_handshake_error(
        &mut c,
        "extensions length + 1",
        &b.handshake(),
        DEFAULT,
        &overrun,
    );
    b.extensions_len = Some(0xffff);
    check_handshake_error(
        &mut c,
        "extensions length 0xffff",
        &b.handshake(),
        DEFAULT,
        &overrun,
    );
    // A block without any extension but a length that says there are some.
    let mut b = HelloBuilder::new();
    b.extensions_len = Some(30);
    check_handshake_error(
        &mut c,
        "extensions length 30, no extensions",
        &b.handshake(),
        DEFAULT,
        &overrun,
    );
    c.finish();
}

#[test]
fn bytes_after_the_extensions_block() {
    let mut c = Cases::new();
    let mut b = good();
    let real = u16::try_from(b.extensions_block().len()).unwrap();
    b.extensions_len = Some(real - 1);
    check_handshake_error(
        &mut c,
        "extensions length - 1",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    let mut b = good();
    b.extensions_len = Some(0);
    check_handshake_error(
        &mut c,
        "extensions length 0 before extensions",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    for tail in [
        &[0u8][..],
        &[0, 0],
        &ext_bytes(SERVER_NAME, &sni_body(&[b"evil.example"])),
    ] {
        let mut b = good();
        b.body_tail = tail.to_vec();
        check_handshake_error(
            &mut c,
            &format!("{} bytes after the block", tail.len()),
            &b.handshake(),
            DEFAULT,
            &is_malformed,
        );
        let mut b = HelloBuilder::new();
        b.body_tail = tail.to_vec();
        check_handshake_error(
            &mut c,
            &format!("{} bytes after an empty block", tail.len()),
            &b.handshake(),
            DEFAULT,
            &is_malformed,
        );
    }
    // One byte where the two-byte extensions length should be.
    let mut b = HelloBuilder::new();
    b.extensions = None;
    b.body_tail = vec![0];
    check_handshake_error(
        &mut c,
        "one byte of extensions length",
        &b.handshake(),
        DEFAULT,
        &is_malformed,
    );
    c.finish();
}

#[test]
fn bad_extension_framing() {
    let mut c = Cases::new();
    let evil = ext_bytes(SERVER_NAME, &sni_body(&[b"evil.example"]));
    // (what, raw bytes at the end of the block, is it a second server_name)
    let tails: Vec<(&str, Vec<u8>, bool)> = vec![
        ("1 byte of extension header", vec![0x00], false),
        ("3 bytes of extension header", vec![0x00, 0x00, 0x00], false),
        (
            "extension claims 16, has 3",
            vec![0x12, 0x34, 0x00, 0x10, 1, 2, 3],
            false,
        ),
        (
            "extension claims past a server_name",
            cat(&[&[0x12, 0x34, 0x00, 0xff], &evil]),
            false,
        ),
        (
            "server_name claims past the block",
            cat(&[&[0x00, 0x00, 0x00, 0xff], &sni_body(&[b"evil.example"])]),
            true,
        ),
    ];
    for (what, tail, second_sni) in &tails {
        let mut b = good();
        b.extensions_tail = tail.clone();
        check_handshake_error(&mut c, what, &b.handshake(), DEFAULT, &|e| {
            is_malformed(e) || (*second_sni && matches!(e, Error::DuplicateExtension(0)))
        });
        // Also without any server_name before it.
        let mut b = HelloBuilder::new();
        b.extensions_tail = tail.clone();
        check_handshake_error(
            &mut c,
            &format!("{what}, alone"),
            &b.handshake(),
            DEFAULT,
            &is_malformed,
        );
    }
    c.finish();
}

/// PITFALLS: tls-parser stops silently at a malformed extension; a second server_name
/// behind it must not be hidden, nor the first one be used.
#[test]
fn malformed_extension_followed_by_a_server_name() {
    let mut c = Cases::new();
    let evil = sni_body(&[b"evil.example"]);
    let bad_exts: Vec<(&str, u16, Vec<u8>)> = vec![
        (
            "supported_versions with an odd list",
            SUPPORTED_VERSIONS,
            vec![3, 3, 4, 3],
        ),
        (
            "supported_versions list longer than the extension",
            SUPPORTED_VERSIONS,
            vec![8, 3, 4],
        ),
        (
            "ALPN list longer than the extension",
            ALPN,
            vec![0, 5, 2, b'h', b'2'],
        ),
        (
            "ALPN protocol longer than the list",
            ALPN,
            vec![0, 3, 5, b'h', b'2'],
        ),
        (
            "server_name list longer than the extension",
            SERVER_NAME,
            vec![0, 30, 0, 0, 4, b'a', b'.', b'b', b'c'],
        ),
    ];
    for (what, ext_type, body) in &bad_exts {
        // Bad extension, then a server_name.
        let b = HelloBuilder::new()
            .ext(*ext_type, body.clone())
            .ext(SERVER_NAME, evil.clone());
        check_handshake_error(
            &mut c,
            &format!("{what}, then server_name"),
            &b.handshake(),
            DEFAULT,
            &|e| {
                is_malformed(e)
                    || (*ext_type == SERVER_NAME && matches!(e, Error::DuplicateExtension(0)))
            },
        );
        // server_name, bad extension, second server_name.
        let b = HelloBuilder::with_sni(b"good.example")
            .ext(*ext_type, body.clone())
            .ext(SERVER_NAME, evil.clone());
        check_handshake_error(
            &mut c,
            &format!("server_name, {what}, server_name"),
            &b.handshake(),
            DEFAULT,
            &|e| is_malformed(e) || matches!(e, Error::DuplicateExtension(0)),
        );
        // Only the bad extension.
        if *ext_type != SERVER_NAME {
            let b = HelloBuilder::with_sni(b"good.example").ext(*ext_type, body.clone());
            check_handshake_error(&mut c, what, &b.handshake(), DEFAULT, &is_malformed);
        }
    }
    c.finish();
}

/// Only the extensions egress routes on are parsed: broken contents in any other (here a
/// supported_groups list whose length byte stands alone, and a key_share of one byte) are the
/// upstream's to refuse, as long as the framing around them holds.
#[test]
fn contents_of_extensions_not_routed_on_are_not_judged() {
    let b = HelloBuilder::with_sni(b"good.example")
        .ext(0x000a, vec![0xff])
        .ext(0x0033, vec![0x01]);
    let hello = check_ok(
        "broken supported_groups and key_share",
        &b.handshake(),
        DEFAULT,
    );
    assert_eq!(
        hello.server_name().map(|n| n.as_str()),
        Some("good.example")
    );
}

#[test]
fn duplicate_extensions() {
    let mut c = Cases::new();
    let cases: Vec<(&str, HelloBuilder, u16)> = vec![
        (
            "two server_names",
            HelloBuilder::with_sni(b"a.example").ext(SERVER_NAME, sni_body(&[b"b.example"])),
            SERVER_NAME,
        ),
        (
            "the same server_name twice",
            HelloBuilder::with_sni(b"a.example").ext(SERVER_NAME, sni_body(&[b"a.example"])),
            SERVER_NAME,
        ),
        (
            "two server_names apart",
            HelloBuilder::with_sni(b"a.example")
                .ext(ALPN, alpn_body(&[b"h2"]))
                .ext(0x0017, Vec::new())
                .ext(SERVER_NAME, sni_body(&[b"b.example"])),
            SERVER_NAME,
        ),
        (
            "two ALPNs",
            good().ext(ALPN, alpn_body(&[b"http/1.1"])),
            ALPN,
        ),
        (
            "two supported_versions",
            good()
                .ext(SUPPORTED_VERSIONS, versions_body(&[0x0304]))
                .ext(SUPPORTED_VERSIONS, versions_body(&[0x0303])),
            SUPPORTED_VERSIONS,
        ),
        (
            "two ECHs",
            good().ext(ECH, ech_outer_body()).ext(ECH, ech_outer_body()),
            ECH,
        ),
    ];
    for (what, b, ext_type) in cases {
        check_handshake_error(
            &mut c,
            what,
            &b.handshake(),
            DEFAULT,
            &|e| matches!(e, Error::DuplicateExtension(t) if *t == ext_type),
        );
    }
    c.finish();
}

/// RFC 8446 §4.2: no two extensions of the same type, whatever the type.
#[test]
fn duplicate_unknown_extension() {
    let mut c = Cases::new();
    let b = good()
        .ext(0x1234, Vec::new())
        .ext(0x0017, Vec::new())
        .ext(0x1234, vec![1]);
    check_handshake_error(&mut c, "two 0x1234", &b.handshake(), DEFAULT, &|e| {
        matches!(e, Error::DuplicateExtension(0x1234))
    });
    c.finish();
}

#[test]
fn more_than_one_name_in_the_server_name_list() {
    let mut c = Cases::new();
    let lists: Vec<(&str, Vec<u8>)> = vec![
        ("two names", sni_body(&[b"a.example", b"b.example"])),
        (
            "the same name twice",
            sni_body(&[b"a.example", b"a.example"]),
        ),
        (
            "three names",
            sni_body(&[b"a.example", b"b.example", b"c.example"]),
        ),
    ];
    for (what, body) in lists {
        let b = HelloBuilder::new().ext(SERVER_NAME, body);
        check_handshake_error(&mut c, what, &b.handshake(), DEFAULT, &|e| {
            matches!(e, Error::MultipleServerNames)
        });
        let b = HelloBuilder::new()
            .ext(ALPN, alpn_body(&[b"h2"]))
            .ext(SERVER_NAME, b.extensions.as_ref().unwrap()[0].1.clone());
        check_handshake_error(
            &mut c,
            &format!("{what}, after ALPN"),
            &b.handshake(),
            DEFAULT,
            &|e| matches!(e, Error::MultipleServerNames),
        );
    }
    // With a name type other than host_name, refusing the type first is fine too.
    let typed: Vec<(&str, Vec<u8>)> = vec![
        (
            "host_name and another type",
            sni_body_typed(&[(0, b"a.example"), (1, b"b.example")]),
        ),
        (
            "another type and host_name",
            sni_body_typed(&[(1, b"b.example"), (0, b"a.example")]),
        ),
    ];
    for (what, body) in typed {
        let b = HelloBuilder::new().ext(SERVER_NAME, body);
        check_handshake_error(&mut c, what, &b.handshake(), DEFAULT, &|e| {
            matches!(e, Error::MultipleServerNames) || is_malformed(e)
        });
    }
    c.finish();
}

#[test]
fn server_name_lengths_inconsistent() {
    let mut c = Cases::new();
    let name = b"a.example";
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        // (what, extension body, may also be MultipleServerNames)
        (
            "list longer than the extension",
            cat(&[&[0, 30, 0, 0, 9], name]),
            false,
        ),
        (
            "list shorter than the extension",
            cat(&[&[0, 5, 0, 0, 9], name]),
            false,
        ),
        (
            "a byte after the list",
            cat(&[&sni_body(&[name]), &[0]]),
            false,
        ),
        (
            "three bytes after the list",
            cat(&[&sni_body(&[name]), &[0, 0, 1]]),
            false,
        ),
        (
            "name longer than the list",
            cat(&[&[0, 12, 0, 0, 20], name]),
            false,
        ),
        (
            "name length 0xffff",
            cat(&[&[0, 12, 0, 0xff, 0xff], name]),
            false,
        ),
        (
            "name shorter than the list",
            cat(&[&[0, 12, 0, 0, 7], name]),
            true,
        ),
        ("empty extension", Vec::new(), false),
        ("one byte", vec![0], false),
        ("list of only a name type", vec![0, 1, 0], false),
        (
            "list of a name type and half a length",
            vec![0, 2, 0, 0],
            false,
        ),
    ];
    for (what, body, multiple_ok) in cases {
        let b = HelloBuilder::new().ext(SERVER_NAME, body);
        check_handshake_error(
            &mut c,
            &format!("server_name: {what}"),
            &b.handshake(),
            DEFAULT,
            &|e| {
                is_malformed(e)
                || (multiple_ok && matches!(e, Error::MultipleServerNames))
                // An empty extension body may be read as an empty list.
                || (what == "empty extension" && matches!(e, Error::InvalidServerName(NameError::Empty)))
            },
        );
    }
    // An empty list: no name at all in a server_name extension.
    let b = HelloBuilder::new().ext(SERVER_NAME, vec![0, 0]);
    check_handshake_error(
        &mut c,
        "server_name: empty list",
        &b.handshake(),
        DEFAULT,
        &|e| is_malformed(e) || matches!(e, Error::InvalidServerName(NameError::Empty)),
    );
    c.finish();
}

/// Names that are not DNS host names, with the `NameError` that `Name::from_ascii` gives.
fn bad_names() -> Vec<(Vec<u8>, NameError)> {
    let mut out: Vec<(Vec<u8>, NameError)> = vec![
        (
            b"www.example.com\0.evil.com".to_vec(),
            NameError::InvalidByte(0),
        ),
        (b"example.com\0".to_vec(), NameError::InvalidByte(0)),
        (b"\0".to_vec(), NameError::InvalidByte(0)),
        (b"www example.com".to_vec(), NameError::InvalidByte(b' ')),
        (b"example.com ".to_vec(), NameError::InvalidByte(b' ')),
        (
            b"b\xc3\xbccher.example".to_vec(),
            NameError::InvalidByte(0xc3),
        ),
        (b"\xff".to_vec(), NameError::InvalidByte(0xff)),
        (b"example.com/evil".to_vec(), NameError::InvalidByte(b'/')),
        (b"example.com:443".to_vec(), NameError::InvalidByte(b':')),
        (b"example.com\r\n".to_vec(), NameError::InvalidByte(b'\r')),
        (b"a_b.example".to_vec(), NameError::InvalidByte(b'_')),
        (b"*.example.com".to_vec(), NameError::InvalidByte(b'*')),
        (b"[::1]".to_vec(), NameError::InvalidByte(b'[')),
        (b"10.0.0.1".to_vec(), NameError::IpLiteral),
        (b"127.0.0.1.".to_vec(), NameError::IpLiteral),
        (b"169.254.169.254".to_vec(), NameError::IpLiteral),
        (b"::1".to_vec(), NameError::IpLiteral),
        (b"fe80::1".to_vec(), NameError::IpLiteral),
        (b"2001:db8::1".to_vec(), NameError::IpLiteral),
        (b"::ffff:127.0.0.1".to_vec(), NameError::IpLiteral),
        (b"127.1".to_vec(), NameError::Numeric),
        (b"2130706433".to_vec(), NameError::Numeric),
        (b"0x7f000001".to_vec(), NameError::Numeric),
        (b"".to_vec(), NameError::Empty),
        (b".".to_vec(), NameError::Empty),
        (b".example.com".to_vec(), NameError::EmptyLabel),
        (b"a..example".to_vec(), NameError::EmptyLabel),
        (b"example.com..".to_vec(), NameError::EmptyLabel),
        (b"-a.example".to_vec(), NameError::Hyphen),
    ];
    out.push((
        format!("{}.example", "a".repeat(64)).into_bytes(),
        NameError::LabelTooLong,
    ));
    out.push((["abcdefghi"; 26].join(".").into_bytes(), NameError::TooLong));
    out
}

#[test]
fn server_name_that_is_not_a_dns_name() {
    let mut c = Cases::new();
    for (name, want) in bad_names() {
        // The oracle agrees with what the test expects.
        assert_eq!(
            Name::from_ascii(&name),
            Err(want),
            "oracle for {:?}",
            String::from_utf8_lossy(&name)
        );
        let b = HelloBuilder::with_sni(&name).ext(ALPN, alpn_body(&[b"h2"]));
        check_handshake_error(
            &mut c,
            &format!("SNI {:?}", String::from_utf8_lossy(&name)),
            &b.handshake(),
            DEFAULT,
            &|e| matches!(e, Error::InvalidServerName(got) if *got == want),
        );
    }
    c.finish();
}

#[test]
fn server_name_of_another_name_type_is_not_used() {
    // RFC 6066 defines only host_name (0). A lone entry of type 1 must not come out as
    // the server name; whether it is an error or "no SNI" is not pinned.
    let b = HelloBuilder::new().ext(SERVER_NAME, sni_body_typed(&[(1, b"evil.example")]));
    let input = b.record();
    let reference = whole(DEFAULT, &input);
    if let Fed::Done { hello, .. } = &reference {
        assert_eq!(
            hello.server_name(),
            None,
            "name_type 1 used as the server name"
        );
    }
    let want = without_raw(reference.answer());
    assert_eq!(without_raw(bytewise(DEFAULT, &input).answer()), want);
    assert_eq!(
        without_raw(whole(DEFAULT, &frame(&b.handshake(), &[1])).answer()),
        want
    );
}

#[test]
fn alpn_lengths_inconsistent() {
    let mut c = Cases::new();
    let cases: &[(&str, &[u8])] = &[
        ("list longer than the extension", &[0, 10, 2, b'h', b'2']),
        ("list shorter than the extension", &[0, 2, 2, b'h', b'2']),
        ("protocol longer than the list", &[0, 3, 5, b'h', b'2']),
        (
            "second protocol longer than the list",
            &[0, 6, 2, b'h', b'2', 8, b'h', b't'],
        ),
        ("empty extension", &[]),
        ("one byte", &[0]),
    ];
    for (what, body) in cases {
        let b = HelloBuilder::with_sni(b"a.example").ext(ALPN, body.to_vec());
        check_handshake_error(
            &mut c,
            &format!("ALPN: {what}"),
            &b.handshake(),
            DEFAULT,
            &is_malformed,
        );
    }
    c.finish();
}

#[test]
fn supported_versions_lengths_inconsistent() {
    let mut c = Cases::new();
    let cases: &[(&str, &[u8])] = &[
        ("odd list", &[3, 3, 4, 3]),
        ("list longer than the extension", &[6, 3, 4]),
        ("list shorter than the extension", &[2, 3, 4, 3, 3]),
        ("empty extension", &[]),
    ];
    for (what, body) in cases {
        let b = HelloBuilder::with_sni(b"a.example").ext(SUPPORTED_VERSIONS, body.to_vec());
        check_handshake_error(
            &mut c,
            &format!("supported_versions: {what}"),
            &b.handshake(),
            DEFAULT,
            &is_malformed,
        );
    }
    c.finish();
}

// ---------------------------------------------------------------------------------------
// Crafted hellos that must be read
// ---------------------------------------------------------------------------------------

/// An ECH outer ClientHello extension body (draft-ietf-tls-esni): outer type, cipher
/// suite, config id, enc, payload.
fn ech_outer_body() -> Vec<u8> {
    let mut out = vec![0, 0x00, 0x01, 0x00, 0x01, 0x2a];
    out.extend(with_u16_len(&[0x33; 32]));
    out.extend(with_u16_len(&[0x44; 144]));
    out
}

fn names_of(h: &ClientHello) -> Option<&str> {
    h.server_name().map(Name::as_str)
}

#[test]
fn minimal_hello_with_sni() {
    let b = HelloBuilder::with_sni(b"a.example");
    let h = check_ok("minimal", &b.handshake(), DEFAULT);
    assert_eq!(names_of(&h), Some("a.example"));
    assert!(h.alpn().is_empty());
    assert_eq!(h.versions(), &[0x0303]);
    assert!(!h.has_ech());
}

#[test]
fn server_name_is_normalised() {
    for (wire, want) in [
        (&b"WWW.Example.COM."[..], "www.example.com"),
        (b"www.example.com.", "www.example.com"),
        (b"XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        (b"1.example.com", "1.example.com"),
    ] {
        let h = check_ok(
            &String::from_utf8_lossy(wire),
            &HelloBuilder::with_sni(wire).handshake(),
            DEFAULT,
        );
        assert_eq!(names_of(&h), Some(want));
    }
    let label = "a".repeat(63);
    let longest = format!("{label}.{label}.{label}.{}", "b".repeat(61));
    assert_eq!(longest.len(), 253);
    let h = check_ok(
        "253-byte name",
        &HelloBuilder::with_sni(longest.as_bytes()).handshake(),
        DEFAULT,
    );
    assert_eq!(names_of(&h), Some(longest.as_str()));
}

#[test]
fn alpn_in_offered_order() {
    let protos: &[&[u8]] = &[
        b"http/1.1",
        b"h2",
        b"acme-tls/1",
        &[0, 0xff, b' '],
        &[b'x'; 255],
    ];
    let b = HelloBuilder::with_sni(b"a.example").ext(ALPN, alpn_body(protos));
    let h = check_ok("alpn", &b.handshake(), DEFAULT);
    let got: Vec<&[u8]> = h.alpn().iter().map(Vec::as_slice).collect();
    assert_eq!(got, protos);
}

#[test]
fn versions_without_grease_or_the_legacy_version() {
    let b = HelloBuilder::with_sni(b"a.example").ext(
        SUPPORTED_VERSIONS,
        versions_body(&[0x2a2a, 0x0304, 0xfafa, 0x0303, 0x0a0a, 0x0302]),
    );
    assert_eq!(
        check_ok("grease versions", &b.handshake(), DEFAULT).versions(),
        &[0x0304, 0x0303, 0x0302]
    );
    let b = HelloBuilder::with_sni(b"a.example")
        .ext(SUPPORTED_VERSIONS, versions_body(&[0x0303, 0x0304]));
    assert_eq!(
        check_ok("versions order", &b.handshake(), DEFAULT).versions(),
        &[0x0303, 0x0304]
    );
    for legacy in [0x0301u16, 0x0302, 0x0303] {
        let mut b = HelloBuilder::with_sni(b"a.example");
        b.legacy_version = legacy;
        assert_eq!(
            check_ok("legacy version", &b.handshake(), DEFAULT).versions(),
            &[legacy]
        );
    }
    // supported_versions wins over legacy_version.
    let mut b =
        HelloBuilder::with_sni(b"a.example").ext(SUPPORTED_VERSIONS, versions_body(&[0x0304]));
    b.legacy_version = 0x0301;
    assert_eq!(
        check_ok("supported_versions over legacy", &b.handshake(), DEFAULT).versions(),
        &[0x0304]
    );
}

#[test]
fn ech_and_grease_extensions() {
    let b = HelloBuilder::new()
        .ext(0x0a0a, Vec::new())
        .ext(SERVER_NAME, sni_body(&[b"public.example"]))
        .ext(ECH, ech_outer_body())
        .ext(ALPN, alpn_body(&[b"h2"]))
        .ext(0xdada, vec![0]);
    let h = check_ok("ECH outer", &b.handshake(), DEFAULT);
    assert!(h.has_ech());
    assert_eq!(names_of(&h), Some("public.example"));
    assert_eq!(h.alpn(), &[b"h2".to_vec()]);
    // ECH without SNI is read (and closed later by the proxy).
    let h = check_ok(
        "ECH, no SNI",
        &HelloBuilder::new().ext(ECH, ech_outer_body()).handshake(),
        DEFAULT,
    );
    assert!(h.has_ech());
    assert_eq!(h.server_name(), None);
    // ECH last, after SNI.
    let h = check_ok(
        "ECH last",
        &HelloBuilder::with_sni(b"a.example")
            .ext(ECH, vec![1])
            .handshake(),
        DEFAULT,
    );
    assert!(h.has_ech());
}

#[test]
fn hello_without_sni_is_read() {
    let h = check_ok(
        "no extensions in the block",
        &HelloBuilder::new().handshake(),
        DEFAULT,
    );
    assert_eq!(h.server_name(), None);
    assert!(h.alpn().is_empty());
    let b = HelloBuilder::new()
        .ext(ALPN, alpn_body(&[b"h2"]))
        .ext(0x0017, Vec::new());
    let h = check_ok("ALPN, no SNI", &b.handshake(), DEFAULT);
    assert_eq!(h.server_name(), None);
    assert_eq!(h.alpn(), &[b"h2".to_vec()]);
    let mut b = HelloBuilder::with_sni(b"a.example");
    b.session_id = Vec::new();
    assert_eq!(
        names_of(&check_ok("empty session id", &b.handshake(), DEFAULT)),
        Some("a.example")
    );
}

#[test]
fn server_name_after_many_extensions() {
    let mut b = HelloBuilder::new();
    for t in 0x0100u16..0x0140 {
        b = b.ext(t, vec![u8::try_from(t & 0xff).unwrap(); usize::from(t & 7)]);
    }
    let b = b.ext(SERVER_NAME, sni_body(&[b"last.example"]));
    assert_eq!(
        names_of(&check_ok("SNI last", &b.handshake(), DEFAULT)),
        Some("last.example")
    );
}

/// A legal (RFC 5246 §7.4.1.2) hello that ends after the compression methods. The spec
/// does not say whether it is read (with no SNI) or refused; it must not have a name.
#[test]
fn hello_without_extensions_block() {
    let mut b = HelloBuilder::new();
    b.extensions = None;
    let input = b.record();
    let reference = whole(DEFAULT, &input);
    match &reference {
        Fed::Done { hello, .. } => {
            assert_eq!(hello.server_name(), None);
            assert!(hello.alpn().is_empty());
            assert_eq!(hello.versions(), &[0x0303]);
            assert!(!hello.has_ech());
            assert_eq!(hello.raw(), &input[..]);
        }
        Fed::Failed {
            error: Error::Malformed(_),
            ..
        } => {}
        other => panic!("hello without extensions: {other:?}"),
    }
    assert_eq!(bytewise(DEFAULT, &input).answer(), reference.answer());
}

// ---------------------------------------------------------------------------------------
// The NeedMore promise, for inputs that end in an error
// ---------------------------------------------------------------------------------------

/// `NeedMore { at_least }` promises that the answer cannot change before `at_least` more
/// bytes: an error must not come earlier than that either. (For `Done`, every run checks
/// it; for errors only this test and `props::at_least_holds_for_errors`, so that a broken
/// promise shows here once instead of in every test.)
#[test]
fn at_least_is_a_promise_for_errors_too() {
    let hs = good_hs();
    let mut wrong_type = good();
    wrong_type.msg_type = 2;
    let mut long_sid = good();
    long_sid.session_id = vec![1; 33];
    let mut overrun = good();
    overrun.extensions_len = Some(0x400);
    let inputs: Vec<(&str, usize, Vec<u8>)> = vec![
        ("HTTP", DEFAULT, b"GET / HTTP/1.1\r\n\r\n".to_vec()),
        (
            "SSLv2",
            DEFAULT,
            vec![0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15],
        ),
        ("alert", DEFAULT, record(21, 0x0303, &[2, 40])),
        ("record version 0x0203", DEFAULT, record(22, 0x0203, &hs)),
        (
            "second record version 0x0203",
            DEFAULT,
            cat(&[
                &record(22, 0x0301, &hs[..10]),
                &record(22, 0x0203, &hs[10..]),
            ]),
        ),
        (
            "empty record",
            DEFAULT,
            cat(&[&record(22, 0x0301, &[]), &record(22, 0x0301, &hs)]),
        ),
        (
            "record of 16385, limit 100000",
            100_000,
            cat(&[&[22, 3, 1, 0x40, 0x01], &hs]),
        ),
        ("record claims 200 of 100", 100, vec![22, 3, 1, 0, 200]),
        (
            "handshake claims 600 of 512",
            512,
            vec![22, 3, 1, 0, 50, 1, 0, 0x02, 0x58],
        ),
        ("handshake type 2", DEFAULT, wrong_type.record()),
        (
            "change_cipher_spec between fragments",
            DEFAULT,
            cat(&[
                &record(22, 0x0301, &hs[..40]),
                &record(20, 0x0303, &[1]),
                &record(22, 0x0303, &hs[40..]),
            ]),
        ),
        (
            "alert between fragments",
            DEFAULT,
            cat(&[
                &record(22, 0x0301, &hs[..40]),
                &record(21, 0x0303, &[2, 10]),
                &record(22, 0x0303, &hs[40..]),
            ]),
        ),
        (
            "trailing handshake data",
            DEFAULT,
            record(22, 0x0301, &cat(&[&hs, &[0, 0, 0, 0]])),
        ),
        ("session id of 33", DEFAULT, long_sid.record()),
        ("extensions length overrun", DEFAULT, overrun.record()),
        (
            "two server_names",
            DEFAULT,
            HelloBuilder::with_sni(b"a.example")
                .ext(SERVER_NAME, sni_body(&[b"b.example"]))
                .record(),
        ),
        (
            "IP literal",
            DEFAULT,
            HelloBuilder::with_sni(b"10.0.0.1").record(),
        ),
    ];
    let mut c = Cases::new();
    for (what, max, input) in inputs {
        c.case(what, || {
            let mut reader = ClientHelloReader::new(max);
            match crate::feed_in_strict(&mut reader, &input, std::iter::repeat(1)) {
                Fed::Failed { .. } => {}
                other => panic!("expected an error, got {other:?}"),
            }
        });
    }
    c.finish();
}
