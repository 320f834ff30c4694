//! Property tests: the answer does not depend on how the input is cut into feeds or into
//! records.

use crate::builder::{
    ALPN, ECH, HelloBuilder, SERVER_NAME, SUPPORTED_VERSIONS, alpn_body, is_grease, sni_body,
    versions_body,
};
use crate::vectors::VECTORS;
use crate::{Answer, DEFAULT, Fed, bytewise, cycle, error_key, frame, run, whole};
use egress_core::target::Name;
use egress_core::tls::Error;
use proptest::prelude::*;
use proptest::sample::Index;

/// Record payload sizes.
fn framing() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        prop::collection::vec(1usize..8, 1..4),
        prop::collection::vec(1usize..400, 1..5),
        prop::collection::vec(1usize..=16_384, 1..3),
    ]
}

/// Feed sizes (never all zero: `cycle` must make progress).
fn feeds() -> impl Strategy<Value = Vec<usize>> {
    (prop::collection::vec(0usize..600, 0..6), 1usize..600).prop_map(|(mut v, last)| {
        v.push(last);
        v
    })
}

fn valid_name() -> impl Strategy<Value = String> {
    "[a-zA-Z]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?){0,4}\\.[a-zA-Z]{1,6}\\.?"
}

/// Host names that are valid or not, in the ways that matter.
fn any_sni() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        valid_name().prop_map(String::into_bytes),
        prop::collection::vec(
            prop::sample::select(b"abcXYZ019.-:_ /\0\xff[]*".to_vec()),
            0..80
        ),
        prop::collection::vec(any::<u8>(), 0..300),
        "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}\\.?".prop_map(String::into_bytes),
        "[0-9a-f:.]{2,24}".prop_map(String::into_bytes),
        "(0x)?[0-9a-fA-F]{1,8}(\\.[a-z0-9]{1,4}){0,2}".prop_map(String::into_bytes),
        (1usize..70, 1usize..6)
            .prop_map(|(len, n)| vec!["a".repeat(len); n].join(".").into_bytes()),
    ]
}

fn alpn_list() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 1..24), 0..5)
}

/// A supported_versions list with at least one real version (a list of GREASE only is
/// left out: the spec does not say whether that reads as no versions or as the legacy one).
fn version_list() -> impl Strategy<Value = Option<Vec<u16>>> {
    prop::option::of(
        prop::collection::vec(
            prop::sample::select(vec![
                0x0304u16, 0x0303, 0x0302, 0x0301, 0x0a0a, 0x4a4a, 0xfafa, 0x7f1c,
            ]),
            1..6,
        )
        .prop_map(|mut v| {
            if v.iter().all(|x| is_grease(*x)) {
                v.push(0x0304);
            }
            v
        }),
    )
}

/// A built hello and the answer it must give (with `raw` left empty: it depends on
/// the framing).
#[derive(Debug, Clone)]
struct Built {
    handshake: Vec<u8>,
    want: Answer,
}

fn built_hello() -> impl Strategy<Value = Built> {
    (
        any_sni(),
        alpn_list(),
        version_list(),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(
            (0x0100u16..0x0200, prop::collection::vec(any::<u8>(), 0..20)),
            0..4,
        ),
        0usize..33,
    )
        .prop_map(|(sni, alpn, versions, ech, sni_last, unknown, sid_len)| {
            let mut b = HelloBuilder::new();
            b.session_id = vec![0x5c; sid_len];
            if !sni_last {
                b = b.ext(SERVER_NAME, sni_body(&[&sni]));
            }
            // Distinct unknown types (a duplicate would be an error of its own).
            let mut seen = Vec::new();
            for (t, body) in unknown {
                if !seen.contains(&t) {
                    seen.push(t);
                    b = b.ext(t, body);
                }
            }
            if !alpn.is_empty() {
                let list: Vec<&[u8]> = alpn.iter().map(Vec::as_slice).collect();
                b = b.ext(ALPN, alpn_body(&list));
            }
            if let Some(v) = &versions {
                b = b.ext(SUPPORTED_VERSIONS, versions_body(v));
            }
            if ech {
                b = b.ext(ECH, vec![0, 0, 1, 0, 1, 7, 0, 0, 0, 0]);
            }
            if sni_last {
                b = b.ext(SERVER_NAME, sni_body(&[&sni]));
            }
            let want = match Name::from_ascii(&sni) {
                Ok(name) => Answer::Hello {
                    server_name: Some(name.as_str().to_owned()),
                    alpn,
                    versions: match versions {
                        Some(v) => v.into_iter().filter(|v| !is_grease(*v)).collect(),
                        None => vec![0x0303],
                    },
                    has_ech: ech,
                    raw: Vec::new(),
                },
                Err(e) => Answer::Error(error_key(&Error::InvalidServerName(e))),
            };
            Built {
                handshake: b.handshake(),
                want,
            }
        })
}

fn with_raw(want: &Answer, raw: &[u8]) -> Answer {
    match want.clone() {
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
            raw: raw.to_vec(),
        },
        other => other,
    }
}

/// `n` mutations at positions biased towards the headers.
fn mutations() -> impl Strategy<Value = Vec<(bool, Index, u8)>> {
    prop::collection::vec((any::<bool>(), any::<Index>(), any::<u8>()), 1..5)
}

fn mutate(input: &mut [u8], muts: &[(bool, Index, u8)]) {
    for (early, at, byte) in muts {
        let span = if *early {
            input.len().min(120)
        } else {
            input.len()
        };
        input[at.index(span)] = *byte;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // Failures are reported, not saved next to the sources. The number of cases is
        // proptest's default (256), or PROPTEST_CASES.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn vectors_read_the_same_in_any_records_and_feeds(
        idx in 0..VECTORS.len(),
        records in framing(),
        feed_sizes in feeds(),
    ) {
        let v = &VECTORS[idx];
        let framed = frame(&v.handshake(), &records);
        let hello = run(DEFAULT, &framed, cycle(&feed_sizes)).hello(v.name);
        v.check(&hello, &framed, &format!("records {records:?}, feeds {feed_sizes:?}"));
    }

    #[test]
    fn built_hellos_read_the_same_in_any_records_and_feeds(
        built in built_hello(),
        records in framing(),
        feed_sizes in feeds(),
    ) {
        let single = crate::record(22, 0x0301, &built.handshake);
        prop_assert_eq!(whole(DEFAULT, &single).answer(), with_raw(&built.want, &single));
        let framed = frame(&built.handshake, &records);
        prop_assert_eq!(run(DEFAULT, &framed, cycle(&feed_sizes)).answer(), with_raw(&built.want, &framed));
        prop_assert_eq!(bytewise(DEFAULT, &framed).answer(), with_raw(&built.want, &framed));
    }

    /// Whatever the bytes, the answer (hello, error variant or "need more") is the same
    /// whole, byte by byte and in random feeds.
    #[test]
    fn mutated_vectors_answer_does_not_depend_on_feeds(
        idx in 0..VECTORS.len(),
        muts in mutations(),
        cut in any::<Index>(),
        truncate in any::<bool>(),
        feed_sizes in feeds(),
    ) {
        let mut input = VECTORS[idx].bytes.to_vec();
        mutate(&mut input, &muts);
        if truncate {
            input.truncate(cut.index(input.len() + 1));
        }
        let want = whole(DEFAULT, &input).answer();
        prop_assert_eq!(bytewise(DEFAULT, &input).answer(), want.clone());
        prop_assert_eq!(run(DEFAULT, &input, cycle(&feed_sizes)).answer(), want.clone());
        // Never a hello whose name is not a valid one, nor a different one.
        if let Answer::Hello { server_name: Some(name), .. } = &want {
            prop_assert!(Name::from_ascii(name.as_bytes()).is_ok());
        }
    }

    /// Mutations inside the handshake message of a built hello, framed at random: the
    /// answer does not depend on the feeds; and when a hello is read, re-framing the same
    /// handshake bytes reads the same fields.
    #[test]
    fn mutated_built_hellos(
        built in built_hello(),
        muts in mutations(),
        records in framing(),
        feed_sizes in feeds(),
    ) {
        let mut hs = built.handshake.clone();
        mutate(&mut hs, &muts);
        let framed = frame(&hs, &records);
        let want = whole(DEFAULT, &framed).answer();
        prop_assert_eq!(bytewise(DEFAULT, &framed).answer(), want.clone());
        prop_assert_eq!(run(DEFAULT, &framed, cycle(&feed_sizes)).answer(), want.clone());
        if let Answer::Hello { .. } = want {
            let single = crate::record(22, 0x0301, &hs);
            if let Fed::Done { hello, .. } = whole(DEFAULT, &single) {
                prop_assert_eq!(crate::summary(&hello), with_raw(&want, &single));
            }
        }
    }

    /// Random bytes after a handshake record header start.
    #[test]
    fn random_bytes_answer_does_not_depend_on_feeds(
        tail in prop::collection::vec(any::<u8>(), 0..400),
        feed_sizes in feeds(),
        max in prop_oneof![Just(DEFAULT), 16usize..600],
    ) {
        let mut input = vec![22, 3, 1];
        input.extend_from_slice(&tail);
        let want = whole(max, &input).answer();
        prop_assert_eq!(bytewise(max, &input).answer(), want.clone());
        prop_assert_eq!(run(max, &input, cycle(&feed_sizes)).answer(), want);
    }

    /// `at_least` is a promise for errors too (see
    /// `malformed::at_least_is_a_promise_for_errors_too`): random bytes after a handshake
    /// record header start, and mutated vectors, fed one byte at a time.
    #[test]
    fn at_least_holds_for_errors(
        tail in prop::collection::vec(any::<u8>(), 0..64),
        idx in 0..VECTORS.len(),
        muts in mutations(),
    ) {
        let mut input = vec![22, 3, 1];
        input.extend_from_slice(&tail);
        let mut reader = egress_core::tls::ClientHelloReader::new(DEFAULT);
        crate::feed_in_strict(&mut reader, &input, std::iter::repeat(1));
        let mut input = VECTORS[idx].bytes.to_vec();
        mutate(&mut input, &muts);
        let mut reader = egress_core::tls::ClientHelloReader::new(DEFAULT);
        crate::feed_in_strict(&mut reader, &input, std::iter::repeat(1));
    }
}
