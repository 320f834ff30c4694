//! Adversarial tests for the incremental TLS ClientHello reader in `egress_core::tls`,
//! written from the specification alone (not from the implementation).
//!
//! - `vectors`: the captured ClientHellos in `tests/data/client-hellos/`, whole, byte by
//!   byte, split at every offset, re-framed into records of many sizes, every prefix,
//!   truncated, and at the size limit.
//! - `malformed`: crafted bad inputs (each checked whole, one byte per feed, split at
//!   every offset and, for handshake-level faults, re-framed), and crafted good ones.
//! - `props`: proptests that the answer does not depend on how the input is split into
//!   feeds or into records.
//! - `wrapper`: the async wrapper over real loopback TCP.
//!
//! Every run of the reader goes through [`feed_in`], which also checks the `NeedMore`
//! promise (`at_least`), that `raw()` is a prefix of the input ending in the last chunk,
//! and that errors are sticky (`Finished` afterwards).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod builder;
mod malformed;
mod props;
mod vectors;
mod wrapper;

use egress_core::tls::{ClientHello, ClientHelloReader, Error, Progress};

/// Where a run of the reader ended.
#[derive(Debug)]
pub(crate) enum Fed {
    /// `Done` after `fed` bytes had been given to the reader.
    Done { hello: ClientHello, fed: usize },
    /// An error.
    Failed { error: Error },
    /// The input ran out; the last answer was `NeedMore`.
    Pending,
}

/// A comparable summary of a run: the hello's fields, the error's variant, or pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Hello {
        server_name: Option<String>,
        alpn: Vec<Vec<u8>>,
        versions: Vec<u16>,
        has_ech: bool,
        raw: Vec<u8>,
    },
    Error(String),
    Pending,
}

/// The error's variant and payload, except the free-text message of `Malformed`.
pub(crate) fn error_key(e: &Error) -> String {
    match e {
        Error::Malformed(_) => "Malformed".to_owned(),
        other => format!("{other:?}"),
    }
}

pub(crate) fn summary(h: &ClientHello) -> Answer {
    Answer::Hello {
        server_name: h.server_name().map(|n| n.as_str().to_owned()),
        alpn: h.alpn().to_vec(),
        versions: h.versions().to_vec(),
        has_ech: h.has_ech(),
        raw: h.raw().to_vec(),
    }
}

impl Fed {
    pub(crate) fn answer(&self) -> Answer {
        match self {
            Fed::Done { hello, .. } => summary(hello),
            Fed::Failed { error, .. } => Answer::Error(error_key(error)),
            Fed::Pending => Answer::Pending,
        }
    }

    #[track_caller]
    pub(crate) fn hello(self, ctx: &str) -> ClientHello {
        match self {
            Fed::Done { hello, .. } => hello,
            other => panic!("{ctx}: expected a ClientHello, got {other:?}"),
        }
    }
}

/// Feeds `input` to `reader` in chunks of the lengths `lens` yields (clamped to what is
/// left; zero gives an empty feed); once `lens` runs out, the rest goes in one feed.
/// Stops at the first `Done` or error and checks the reader's contract on the way:
/// `at_least >= 1`; `Done` not before an earlier `NeedMore` said it could come; `raw()`
/// a prefix of the input that ends in the last chunk; `Finished` after the answer.
#[track_caller]
pub(crate) fn feed_in(
    reader: &mut ClientHelloReader,
    input: &[u8],
    lens: impl IntoIterator<Item = usize>,
) -> Fed {
    feed_in_checked(reader, input, lens, false)
}

/// [`feed_in`] that also requires errors to keep the `NeedMore` promise: the spec says
/// `at_least` more bytes are needed "before the answer can change", and an error is an
/// answer. Kept apart (see `malformed::at_least_is_a_promise_for_errors_too`) so that one
/// broken promise does not hide every other finding.
#[track_caller]
pub(crate) fn feed_in_strict(
    reader: &mut ClientHelloReader,
    input: &[u8],
    lens: impl IntoIterator<Item = usize>,
) -> Fed {
    feed_in_checked(reader, input, lens, true)
}

#[track_caller]
fn feed_in_checked(
    reader: &mut ClientHelloReader,
    input: &[u8],
    lens: impl IntoIterator<Item = usize>,
    errors_keep_promises: bool,
) -> Fed {
    let mut lens = lens.into_iter();
    let mut pos = 0usize;
    // No answer but NeedMore may come before this many bytes in total have been fed.
    let mut promise = 0usize;
    let mut first = true;
    while first || pos < input.len() {
        first = false;
        let left = input.len() - pos;
        let n = lens.next().unwrap_or(left).min(left);
        let before = pos;
        let result = reader.feed(&input[pos..pos + n]);
        pos += n;
        match result {
            Ok(Progress::NeedMore { at_least }) => {
                assert!(
                    at_least >= 1,
                    "NeedMore {{ at_least: 0 }} after {pos} bytes"
                );
                promise = promise.max(pos + at_least);
            }
            Ok(Progress::Done(hello)) => {
                let raw = hello.raw();
                assert!(
                    raw.len() <= pos,
                    "raw() is {} bytes but only {pos} were fed",
                    raw.len()
                );
                assert!(
                    raw.len() > before,
                    "the hello ended at byte {} but Done came only on the feed of bytes {before}..{pos}",
                    raw.len()
                );
                assert_eq!(raw, &input[..raw.len()], "raw() is not the bytes fed");
                assert!(
                    raw.len() >= promise,
                    "Done after {} bytes although an earlier NeedMore promised no answer before {promise}",
                    raw.len()
                );
                assert_finished(reader, "after Done");
                return Fed::Done { hello, fed: pos };
            }
            Err(error) => {
                assert!(
                    !matches!(error, Error::Finished),
                    "Finished as the first error (after {pos} bytes)"
                );
                assert!(
                    !errors_keep_promises || pos >= promise,
                    "error {error:?} after {pos} bytes although an earlier NeedMore promised no answer before {promise}"
                );
                assert_finished(reader, "after an error");
                return Fed::Failed { error };
            }
        }
    }
    Fed::Pending
}

#[track_caller]
fn assert_finished(reader: &mut ClientHelloReader, when: &str) {
    for data in [&[0x16u8][..], &[][..], &[0x16, 0x03, 0x01, 0x00, 0x05][..]] {
        match reader.feed(data) {
            Err(Error::Finished) => {}
            other => panic!("feed({data:?}) {when} must give Err(Finished), got {other:?}"),
        }
    }
}

/// A fresh reader with limit `max`, fed `input` in chunks of `lens`.
#[track_caller]
pub(crate) fn run(max: usize, input: &[u8], lens: impl IntoIterator<Item = usize>) -> Fed {
    let mut reader = ClientHelloReader::new(max);
    feed_in(&mut reader, input, lens)
}

#[track_caller]
pub(crate) fn whole(max: usize, input: &[u8]) -> Fed {
    run(max, input, [input.len()])
}

#[track_caller]
pub(crate) fn bytewise(max: usize, input: &[u8]) -> Fed {
    run(max, input, std::iter::repeat(1))
}

#[track_caller]
pub(crate) fn split_at(max: usize, input: &[u8], at: usize) -> Fed {
    run(max, input, [at, input.len() - at])
}

/// Chunk lengths cycling through `sizes` forever.
pub(crate) fn cycle(sizes: &[usize]) -> impl Iterator<Item = usize> + '_ {
    sizes.iter().copied().cycle()
}

/// One TLS record.
pub(crate) fn record(content_type: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let len = u16::try_from(payload.len()).expect("record payload fits a u16 length");
    let mut out = vec![content_type];
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Handshake bytes framed into handshake records whose payload lengths cycle through
/// `sizes` (the last one shorter). The first record says 0x0301, the others 0x0303,
/// as real clients do.
pub(crate) fn frame(handshake: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut sizes = cycle(sizes);
    while pos < handshake.len() {
        let n = sizes.next().unwrap_or(1).max(1).min(handshake.len() - pos);
        let version = if pos == 0 { 0x0301 } else { 0x0303 };
        out.extend(record(22, version, &handshake[pos..pos + n]));
        pos += n;
    }
    out
}

/// The handshake bytes carried by a sequence of handshake records.
pub(crate) fn unframe(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < raw.len() {
        assert_eq!(raw[pos], 22, "test data: not a handshake record at {pos}");
        let len = usize::from(u16::from_be_bytes([raw[pos + 3], raw[pos + 4]]));
        out.extend_from_slice(&raw[pos + 5..pos + 5 + len]);
        pos += 5 + len;
    }
    assert_eq!(pos, raw.len(), "test data: records do not end at the end");
    out
}

/// Runs the cases of a table-driven test to the end and then fails with every failing
/// case, instead of stopping at the first one.
#[derive(Debug, Default)]
pub(crate) struct Cases {
    failures: Vec<String>,
}

impl Cases {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn case(&mut self, name: &str, f: impl FnOnce()) {
        if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            self.failures.push(format!("{name}: {msg}"));
        }
    }

    #[track_caller]
    pub(crate) fn finish(self) {
        assert!(
            self.failures.is_empty(),
            "{} failing case(s):\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

/// The reader's documented default limit.
pub(crate) const DEFAULT: usize = egress_core::tls::DEFAULT_MAX_CLIENT_HELLO;

#[test]
fn default_limit_is_16_kib() {
    assert_eq!(DEFAULT, 16 * 1024);
}

#[test]
fn types_have_the_promised_traits() {
    fn is_error<E: std::error::Error>() {}
    fn is_debug<T: std::fmt::Debug>() {}
    fn is_clone<T: Clone>() {}
    is_error::<Error>();
    is_debug::<ClientHelloReader>();
    is_debug::<ClientHello>();
    is_clone::<ClientHello>();
    let reader = ClientHelloReader::default();
    assert!(!format!("{reader:?}").is_empty());
    assert!(!Error::Alert.to_string().is_empty());
    assert!(!Error::TooLarge { limit: 7 }.to_string().is_empty());
}
