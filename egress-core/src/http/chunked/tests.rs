use proptest::prelude::*;

use super::*;

/// The outcome of feeding a whole stream: total bytes consumed and whether the body ended, or
/// the error (how much was consumed before an error depends on the split, so it is left out).
type Outcome = Result<(usize, bool), ChunkedError>;

/// Feeds `pieces` in order, checking the `Scanned` contract on every call.
fn feed<'a>(limits: ChunkedLimits, pieces: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut scanner = ChunkedScanner::new(limits);
    let mut total = 0;
    for piece in pieces {
        let Scanned { consumed, done } = scanner.scan(piece)?;
        total += consumed;
        assert_eq!(done, scanner.is_done());
        if done {
            assert!(consumed <= piece.len());
            return Ok((total, true));
        }
        assert_eq!(consumed, piece.len());
    }
    Ok((total, false))
}

/// `input` cut at the given offsets (any order, out-of-range ones clamped).
fn split_at<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(input.len())).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([input.len()]) {
        pieces.push(&input[start..cut]);
        start = cut;
    }
    pieces
}

fn whole(input: &[u8]) -> Outcome {
    feed(ChunkedLimits::default(), [input])
}

/// Asserts that one call, one byte at a time, and every split in two and three pieces all
/// give `expected`.
fn check_every_split(limits: ChunkedLimits, input: &[u8], expected: Outcome) {
    let shown = String::from_utf8_lossy(input);
    assert_eq!(feed(limits, [input]), expected, "whole {shown:?}");
    assert_eq!(
        feed(limits, input.chunks(1)),
        expected,
        "bytewise {shown:?}"
    );
    for i in 0..=input.len() {
        assert_eq!(
            feed(limits, split_at(input, &[i])),
            expected,
            "at {i} {shown:?}"
        );
        for j in i..=input.len() {
            assert_eq!(
                feed(limits, split_at(input, &[i, j])),
                expected,
                "at {i},{j} {shown:?}"
            );
        }
    }
}

const GOOD: &[&[u8]] = &[
    b"5\r\nhello\r\n0\r\n\r\n",
    b"0\r\n\r\n",
    b"000\r\n\r\n",
    b"1\r\na\r\n2\r\nbc\r\n3\r\ndef\r\n4\r\nghij\r\n0\r\n\r\n",
    b"A\r\n0123456789\r\n1f\r\n0123456789012345678901234567890\r\nE\r\n0123456789abcd\r\n0\r\n\r\n",
    b"5;name=value\r\nhello\r\n0;last\r\n\r\n",
    b"5 ; a = \"q;\\\"x\\\\\" ;b\t;c=tok\r\nhello\r\n0\r\n\r\n",
    b"5;\xff\xfe=\"\xc3\xa9\"\r\nhello\r\n0\r\n\r\n",
    b"4\r\n\r\n\r\n\r\n0\r\n\r\n",
    b"0\r\nFoo: bar\r\nX-Empty:\r\nx-tab:\tv a l\t\r\n\r\n",
    b"3\r\nabc\r\n0\r\nChecksum: 1234\r\n\r\n",
];

#[test]
fn reads_good_bodies_to_their_end() {
    for body in GOOD {
        check_every_split(ChunkedLimits::default(), body, Ok((body.len(), true)));
    }
}

#[test]
fn every_prefix_needs_more() {
    for body in GOOD {
        for end in 0..body.len() {
            assert_eq!(whole(&body[..end]), Ok((end, false)), "{end}");
        }
    }
}

#[test]
fn leaves_the_next_message_unconsumed() {
    let mut stream = b"4\r\nwiki\r\n0\r\nT: v\r\n\r\n".to_vec();
    let end = stream.len();
    stream.extend_from_slice(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    check_every_split(ChunkedLimits::default(), &stream, Ok((end, true)));

    let mut scanner = ChunkedScanner::default();
    assert_eq!(
        scanner.scan(b"0\r\n\r\n0\r\n\r\n"),
        Ok(Scanned {
            consumed: 5,
            done: true
        })
    );
    assert!(scanner.is_done());
    assert_eq!(scanner.scan(b""), Err(ChunkedError::Finished));
    assert_eq!(scanner.scan(b"0\r\n\r\n"), Err(ChunkedError::Finished));
    assert!(scanner.is_done());
}

#[test]
fn empty_input_changes_nothing() {
    let mut scanner = ChunkedScanner::default();
    assert_eq!(
        scanner.scan(b""),
        Ok(Scanned {
            consumed: 0,
            done: false
        })
    );
    assert_eq!(
        scanner.scan(b"1\r\nx"),
        Ok(Scanned {
            consumed: 4,
            done: false
        })
    );
    assert_eq!(
        scanner.scan(b""),
        Ok(Scanned {
            consumed: 0,
            done: false
        })
    );
    assert_eq!(
        scanner.scan(b"\r\n0\r\n\r\nX"),
        Ok(Scanned {
            consumed: 7,
            done: true
        })
    );
}

const BAD: &[(&[u8], ChunkedError)] = {
    use ChunkedError::*;
    &[
        // Size lines.
        (b"\r\n", BadSize),
        (b";a\r\n", BadSize),
        (b" 5\r\nhello\r\n0\r\n\r\n", BadSize),
        (b"\t5\r\n", BadSize),
        (b"5 \r\nhello\r\n0\r\n\r\n", BadSize),
        (b"5\t\r\n", BadSize),
        (b"+5\r\n", BadSize),
        (b"-5\r\n", BadSize),
        (b"0x5\r\n", BadSize),
        (b"5g\r\n", BadSize),
        (b"5 5\r\n", BadSize),
        (b"5,\r\n", BadSize),
        (b"5;a=\x00\r\n", BadSize),
        (b"5;a=\x7f\r\n", BadSize),
        (b"5;a=\"x\r\nhello\r\n0\r\n\r\n", BadSize),
        (b"5;a=\"x\\\"\r\n", BadSize),
        (b"10000000000000000\r\n", SizeTooLarge),
        (b"fffffffffffffffff0\r\n", SizeTooLarge),
        // Line endings.
        (b"5\nhello\r\n0\r\n\r\n", BadLineEnding),
        (b"5;a=b\nhello\r\n", BadLineEnding),
        (b"5;a=\"x\nhello\r\n", BadLineEnding),
        (b"\n", BadLineEnding),
        (b"\rX", BadLineEnding),
        (b"5\rX", BadLineEnding),
        (b"5\r\r\n", BadLineEnding),
        (b"5\r\nhelloX\r\n0\r\n\r\n", BadLineEnding),
        (b"5\r\nhello\n0\r\n\r\n", BadLineEnding),
        (b"5\r\nhello\rX", BadLineEnding),
        (b"5\r\nhello0\r\n\r\n", BadLineEnding),
        (b"5\r\nhello!\r\n0\r\n\r\n", BadLineEnding),
        (b"0\r\n\n", BadLineEnding),
        (b"0\r\n\r\r\n", BadLineEnding),
        (b"0\r\n\rX", BadLineEnding),
        (b"0\r\nFoo: bar\n\r\n", BadLineEnding),
        (b"0\r\nFoo: bar\rX\r\n\r\n", BadLineEnding),
        (b"0\r\nFo\no: bar\r\n\r\n", BadLineEnding),
        (b"0\r\nFoo\rX", BadLineEnding),
        // Trailers.
        (b"0\r\n Foo: bar\r\n\r\n", BadTrailer),
        (b"0\r\nFoo: bar\r\n\tbaz\r\n\r\n", BadTrailer),
        (b"0\r\nFoo : bar\r\n\r\n", BadTrailer),
        (b"0\r\nFoo\t: bar\r\n\r\n", BadTrailer),
        (b"0\r\n: bar\r\n\r\n", BadTrailer),
        (b"0\r\nFoo\r\n\r\n", BadTrailer),
        (b"0\r\nF(o): bar\r\n\r\n", BadTrailer),
        (b"0\r\nFoo: b\x00r\r\n\r\n", BadTrailer),
        (b"0\r\nFoo: b\x1br\r\n\r\n", BadTrailer),
    ]
};

#[test]
fn refuses_every_bad_shape() {
    for (input, error) in BAD {
        check_every_split(ChunkedLimits::default(), input, Err(*error));
    }
}

#[test]
fn errors_are_sticky() {
    for (input, error) in BAD {
        let mut scanner = ChunkedScanner::default();
        assert_eq!(scanner.scan(input), Err(*error));
        assert_eq!(scanner.scan(b""), Err(*error));
        assert_eq!(scanner.scan(b"0\r\n\r\n"), Err(*error));
        assert!(!scanner.is_done());
    }
}

#[test]
fn bounds_the_size_line() {
    let limits = ChunkedLimits {
        max_line: 8,
        max_trailers: 0,
    };
    check_every_split(limits, b"5;aaaaaa\r\nhello\r\n0\r\n\r\n", Ok((22, true)));
    check_every_split(
        limits,
        b"5;aaaaaaa\r\nhello\r\n0\r\n\r\n",
        Err(ChunkedError::LineTooLong),
    );
    check_every_split(limits, b"000000005\r\n", Err(ChunkedError::LineTooLong));
    // The bound is per line: a second long-ish line is measured from its own start.
    check_every_split(limits, b"1;aaaaaa\r\nx\r\n0;bbbbbb\r\n\r\n", Ok((25, true)));

    let mut at_limit = b"5;".to_vec();
    at_limit.resize(DEFAULT_MAX_LINE, b'a');
    at_limit.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    assert_eq!(whole(&at_limit), Ok((at_limit.len(), true)));
    at_limit.insert(2, b'a');
    assert_eq!(whole(&at_limit), Err(ChunkedError::LineTooLong));

    // Leading zeros never overflow the size, only the line limit.
    let mut zeros = vec![b'0'; DEFAULT_MAX_LINE - 1];
    zeros.extend_from_slice(b"1\r\nx\r\n0\r\n\r\n");
    assert_eq!(whole(&zeros), Ok((zeros.len(), true)));
    zeros.insert(0, b'0');
    assert_eq!(whole(&zeros), Err(ChunkedError::LineTooLong));
}

#[test]
fn bounds_the_trailers() {
    let limits = ChunkedLimits {
        max_line: 8,
        max_trailers: 10,
    };
    check_every_split(limits, b"0\r\nA: 12345\r\n\r\n", Ok((15, true)));
    check_every_split(
        limits,
        b"0\r\nA: 123456\r\n\r\n",
        Err(ChunkedError::TrailersTooLarge),
    );
    // The total is over all trailer lines.
    check_every_split(
        limits,
        b"0\r\nA: 1\r\nB: 2\r\n\r\n",
        Err(ChunkedError::TrailersTooLarge),
    );
    let limits = ChunkedLimits {
        max_line: 8,
        max_trailers: 0,
    };
    check_every_split(limits, b"0\r\n\r\n", Ok((5, true)));
    check_every_split(
        limits,
        b"0\r\nA:\r\n\r\n",
        Err(ChunkedError::TrailersTooLarge),
    );
}

#[test]
fn counts_a_huge_chunk_without_holding_it() {
    // 4 GiB declared, fed 64 KiB at a time from one static buffer: only a counter moves.
    static BLOCK: [u8; 64 * 1024] = [b'x'; 64 * 1024];
    let mut scanner = ChunkedScanner::default();
    assert_eq!(
        scanner.scan(b"100000000\r\n"),
        Ok(Scanned {
            consumed: 11,
            done: false
        })
    );
    for _ in 0..(1u64 << 32) / BLOCK.len() as u64 {
        assert_eq!(
            scanner.scan(&BLOCK),
            Ok(Scanned {
                consumed: BLOCK.len(),
                done: false
            })
        );
    }
    assert_eq!(scanner.state, State::DataCr);
    assert_eq!(
        scanner.scan(b"\r\n0\r\n\r\nnext"),
        Ok(Scanned {
            consumed: 7,
            done: true
        })
    );

    // The largest sizes are accepted and simply count down.
    for line in [
        &b"fffffffff\r\n"[..],
        b"ffffffffffffffff\r\n",
        b"0000FFFFFFFFFFFFFFFF\r\n",
    ] {
        let mut scanner = ChunkedScanner::default();
        assert_eq!(
            scanner.scan(line),
            Ok(Scanned {
                consumed: line.len(),
                done: false
            })
        );
        let State::Data { remaining } = scanner.state else {
            panic!("{:?}", scanner.state)
        };
        assert_eq!(
            scanner.scan(&BLOCK),
            Ok(Scanned {
                consumed: BLOCK.len(),
                done: false
            })
        );
        assert_eq!(
            scanner.state,
            State::Data {
                remaining: remaining - BLOCK.len() as u64
            }
        );
        assert!(remaining >= 0xf_ffff_ffff);
    }
}

#[test]
fn errors_read_as_sentences() {
    let all = [
        ChunkedError::BadSize,
        ChunkedError::SizeTooLarge,
        ChunkedError::LineTooLong,
        ChunkedError::BadLineEnding,
        ChunkedError::TrailersTooLarge,
        ChunkedError::BadTrailer,
        ChunkedError::Finished,
    ];
    for error in all {
        let text = error.to_string();
        assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        assert!(!text.ends_with('.'), "{text}");
    }
}

/// One chunk as the encoder writes it: its data length and its extensions.
#[derive(Debug, Clone)]
struct Chunk {
    len: usize,
    ext: String,
    upper: bool,
    zeros: usize,
}

fn ext() -> impl Strategy<Value = String> {
    let name = "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,8}";
    let value = prop_oneof![
        "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,8}",
        r#""([a-z ;=,\t]|\\["\\a])*""#,
    ];
    let ws = "[ \t]{0,2}";
    prop::collection::vec((ws, name, prop::option::of((ws, ws, value))), 0..3).prop_map(|exts| {
        exts.into_iter()
            .map(|(bws, name, value)| match value {
                Some((before, after, value)) => format!("{bws};{bws}{name}{before}={after}{value}"),
                None => format!("{bws};{name}"),
            })
            .collect()
    })
}

fn chunk() -> impl Strategy<Value = Chunk> {
    (1usize..80, ext(), any::<bool>(), 0usize..3).prop_map(|(len, ext, upper, zeros)| Chunk {
        len,
        ext,
        upper,
        zeros,
    })
}

fn trailers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,12}",
            "[ -~\t\u{80}-\u{ff}]{0,24}",
        ),
        0..4,
    )
}

/// Encodes `data` with the given chunking (cycled), last-chunk extension and trailers.
fn encode(data: &[u8], chunks: &[Chunk], last: &Chunk, trailers: &[(String, String)]) -> Vec<u8> {
    let size_line = |out: &mut Vec<u8>, size: usize, chunk: &Chunk| {
        let hex = if chunk.upper {
            format!("{size:X}")
        } else {
            format!("{size:x}")
        };
        out.extend(std::iter::repeat_n(b'0', chunk.zeros));
        out.extend_from_slice(hex.as_bytes());
        out.extend_from_slice(chunk.ext.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    let mut out = Vec::new();
    let mut rest = data;
    for chunk in chunks.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(chunk.len.min(rest.len()));
        size_line(&mut out, head.len(), chunk);
        out.extend_from_slice(head);
        out.extend_from_slice(b"\r\n");
        rest = tail;
    }
    size_line(&mut out, 0, last);
    for (name, value) in trailers {
        out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

proptest! {
    #[test]
    fn random_bodies_end_where_encoded(
        data in prop::collection::vec(any::<u8>(), 0..600),
        chunks in prop::collection::vec(chunk(), 1..8),
        last in chunk(),
        trailers in trailers(),
        after in prop::collection::vec(any::<u8>(), 0..40),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let body = encode(&data, &chunks, &last, &trailers);
        let mut stream = body.clone();
        stream.extend_from_slice(&after);
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        let outcome = feed(ChunkedLimits::default(), split_at(&stream, &cuts));
        prop_assert_eq!(outcome, Ok((body.len(), true)));
    }

    #[test]
    fn splitting_never_changes_the_answer(
        data in prop::collection::vec(any::<u8>(), 0..100),
        chunks in prop::collection::vec(chunk(), 1..4),
        trailers in trailers(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 0..4),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        // A valid body with a few bytes replaced, inserted or removed: mostly near misses.
        let mut stream = encode(&data, &chunks, &chunks[0], &trailers);
        for (at, byte, kind) in edits {
            let at = at.index(stream.len() + 1);
            match kind {
                0 if at < stream.len() => stream[at] = byte,
                1 => stream.insert(at, byte),
                _ if at < stream.len() => { stream.remove(at); }
                _ => {}
            }
        }
        let limits = ChunkedLimits { max_line: 24, max_trailers: 48 };
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        let expected = feed(limits, [&stream[..]]);
        prop_assert_eq!(feed(limits, split_at(&stream, &cuts)), expected);
        prop_assert_eq!(feed(limits, stream.chunks(1)), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_split_freely(
        stream in prop::collection::vec(any::<u8>(), 0..200),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let cuts: Vec<usize> = cuts.iter().map(|c| c.index(stream.len() + 1)).collect();
        let expected = feed(ChunkedLimits::default(), [&stream[..]]);
        prop_assert_eq!(feed(ChunkedLimits::default(), split_at(&stream, &cuts)), expected);
    }
}
