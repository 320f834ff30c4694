//! A sans-IO scanner that finds where a `Transfer-Encoding: chunked` body ends (RFC 9112 §7.1),
//! fed the bytes after a message head as they arrive, so the proxy can forward them unchanged.
//! It only counts (never copies or buffers body data) and refuses every framing ambiguity a
//! request smuggler could use: bare CR or LF, a missing CRLF after chunk data, odd sizes.

use std::fmt;

/// Default bound on one chunk size line. Real size lines are a few hex digits, sometimes with
/// a short extension; 4 KiB is generous and still stops a peer that never sends CRLF.
const DEFAULT_MAX_LINE: usize = 4 * 1024;
/// Default bound on the trailer section. Trailers are rare and small (a checksum, a status);
/// 16 KiB matches common bounds on a whole header block.
const DEFAULT_MAX_TRAILERS: usize = 16 * 1024;

/// Bounds on the parts of a chunked body that are lines rather than data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Longest chunk size line in bytes: hex size and extensions, not counting the CRLF.
    /// Default 4096.
    pub max_line: usize,
    /// Most bytes of trailer field lines together, each line's CRLF included (the final empty
    /// line is not counted). Default 16384.
    pub max_trailers: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        Self {
            max_line: DEFAULT_MAX_LINE,
            max_trailers: DEFAULT_MAX_TRAILERS,
        }
    }
}

/// What one [`ChunkedScanner::scan`] call found.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Scanned {
    /// How many leading bytes of the input belong to the body. Equal to the input length
    /// unless `done`.
    pub consumed: usize,
    /// Whether the body (last chunk, trailers and final CRLF) ended at `consumed`; any bytes
    /// after it belong to the next message.
    pub done: bool,
}

/// Why a chunked body is refused. Every error is final: the connection cannot be reused,
/// since where the next message starts is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkedError {
    /// A chunk size line that is not `1*HEXDIG [ chunk-ext ]`: empty, whitespace before the
    /// size or after it without an extension, a sign or `0x`, a control character in an
    /// extension, or an unterminated quoted string.
    BadSize,
    /// A chunk size that does not fit in 64 bits.
    SizeTooLarge,
    /// A chunk size line longer than [`ChunkedLimits::max_line`].
    LineTooLong,
    /// A bare LF, a CR not followed by LF, or chunk data not followed by exactly CRLF.
    BadLineEnding,
    /// Trailer field lines longer together than [`ChunkedLimits::max_trailers`].
    TrailersTooLarge,
    /// A trailer line that is not `name: value`: empty name, whitespace before the colon, no
    /// colon, a control character, or a folded (obs-fold) line.
    BadTrailer,
    /// [`ChunkedScanner::scan`] was called after the body ended.
    Finished,
}

impl fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadSize => "invalid chunk size line",
            Self::SizeTooLarge => "chunk size does not fit in 64 bits",
            Self::LineTooLong => "chunk size line longer than the limit",
            Self::BadLineEnding => "chunked framing: bare CR or LF, or no CRLF after chunk data",
            Self::TrailersTooLarge => "chunked trailers larger than the limit",
            Self::BadTrailer => "malformed trailer field line",
            Self::Finished => "chunked body already ended",
        })
    }
}

impl std::error::Error for ChunkedError {}

/// Where the scanner is in the body. Only integers and flags: body bytes are counted, not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the hex digits of a chunk size; `digits` says whether any was seen.
    Size { size: u64, digits: bool },
    /// In whitespace after the size, which must lead to an extension (`5 ;x`).
    SizeSpace { size: u64 },
    /// In the extensions after the first `;`, tracking quoted strings and their escapes.
    Ext {
        size: u64,
        quoted: bool,
        escaped: bool,
    },
    /// After the CR of a size line; `valid` is false when the line was bad, which is reported
    /// once its ending is known to be a real CRLF.
    SizeLf { size: u64, valid: bool },
    /// In chunk data, with this many bytes still to come (never 0).
    Data { remaining: u64 },
    /// After chunk data: the CR must come next.
    DataCr,
    /// After chunk data and its CR: the LF must come next.
    DataLf,
    /// At the start of a trailer line, or of the final empty line.
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value.
    TrailerValue,
    /// After the CR of a trailer line; `valid` as in `SizeLf`.
    TrailerLf { valid: bool },
    /// After the CR of the final empty line.
    EndLf,
    /// The body ended.
    Done,
    /// The body was refused; every later call returns this error.
    Failed(ChunkedError),
}

/// Finds the end of a chunked body in bytes fed to it as they arrive, in any pieces.
///
/// The answer does not depend on how the stream is split: feeding a body in one piece or one
/// byte at a time gives the same total consumed, the same end and the same error.
#[derive(Debug, Clone)]
pub struct ChunkedScanner {
    limits: ChunkedLimits,
    state: State,
    /// Bytes of the current size line so far (CRLF not counted).
    line: usize,
    /// Bytes of trailer field lines so far.
    trailers: usize,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        Self::new(ChunkedLimits::default())
    }
}

impl ChunkedScanner {
    /// A scanner at the start of a chunked body (the first byte after the head).
    pub fn new(limits: ChunkedLimits) -> Self {
        Self {
            limits,
            state: State::Size {
                size: 0,
                digits: false,
            },
            line: 0,
            trailers: 0,
        }
    }

    /// Scans `input`, the next bytes of the stream, and says how many of them belong to the
    /// body and whether it ended. When `done` is false, all of `input` was consumed.
    ///
    /// # Errors
    ///
    /// A [`ChunkedError`] for malformed framing or a limit exceeded; the error is sticky, every
    /// later call returns it again. [`ChunkedError::Finished`] when called after the body ended.
    pub fn scan(&mut self, input: &[u8]) -> Result<Scanned, ChunkedError> {
        match self.state {
            State::Done => return Err(ChunkedError::Finished),
            State::Failed(error) => return Err(error),
            _ => {}
        }
        let mut pos = 0;
        while let Some(rest) = input.get(pos..).filter(|rest| !rest.is_empty()) {
            if let State::Data { remaining } = self.state {
                // Chunk data is skipped in one step, however large the declared size.
                let take = usize::try_from(remaining).map_or(rest.len(), |r| r.min(rest.len()));
                let left = remaining.saturating_sub(u64::try_from(take).unwrap_or(remaining));
                self.state = if left == 0 {
                    State::DataCr
                } else {
                    State::Data { remaining: left }
                };
                pos = pos.saturating_add(take);
                continue;
            }
            let Some(&byte) = rest.first() else { break };
            if let Err(error) = self.step(byte) {
                self.state = State::Failed(error);
                return Err(error);
            }
            pos = pos.saturating_add(1);
            if self.state == State::Done {
                return Ok(Scanned {
                    consumed: pos,
                    done: true,
                });
            }
        }
        Ok(Scanned {
            consumed: input.len(),
            done: false,
        })
    }

    /// Whether the body has ended.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Advances over one byte outside chunk data.
    fn step(&mut self, byte: u8) -> Result<(), ChunkedError> {
        use ChunkedError::{BadLineEnding, BadSize, BadTrailer};

        // Every byte of a size line before its CR counts towards its limit.
        if matches!(
            self.state,
            State::Size { .. } | State::SizeSpace { .. } | State::Ext { .. }
        ) && !matches!(byte, b'\r' | b'\n')
        {
            self.line = self.line.saturating_add(1);
            if self.line > self.limits.max_line {
                return Err(ChunkedError::LineTooLong);
            }
        }
        // Every byte of a trailer field line counts, its CRLF included; the final empty line
        // (a CR at the start of a line, then its LF) does not.
        let in_field_line = match self.state {
            State::TrailerStart => byte != b'\r',
            State::TrailerName | State::TrailerValue | State::TrailerLf { .. } => true,
            _ => false,
        };
        if in_field_line {
            self.trailers = self.trailers.saturating_add(1);
            if self.trailers > self.limits.max_trailers {
                return Err(ChunkedError::TrailersTooLarge);
            }
        }

        self.state = match (self.state, byte) {
            // A bare LF is refused wherever it appears.
            (
                State::Size { .. }
                | State::SizeSpace { .. }
                | State::Ext { .. }
                | State::TrailerStart
                | State::TrailerName
                | State::TrailerValue,
                b'\n',
            ) => return Err(BadLineEnding),

            // The size line: 1*HEXDIG, then optional BWS ";" extensions, then CRLF.
            (State::Size { size, .. }, _) if byte.is_ascii_hexdigit() => {
                let digit = u64::from(hex_value(byte));
                let size = size
                    .checked_mul(16)
                    .and_then(|s| s.checked_add(digit))
                    .ok_or(ChunkedError::SizeTooLarge)?;
                State::Size { size, digits: true }
            }
            (State::Size { size, digits }, b'\r') => State::SizeLf {
                size,
                valid: digits,
            },
            (State::Size { size, digits: true }, b';') | (State::SizeSpace { size }, b';') => {
                State::Ext {
                    size,
                    quoted: false,
                    escaped: false,
                }
            }
            (State::Size { size, digits: true }, b' ' | b'\t')
            | (State::SizeSpace { size }, b' ' | b'\t') => State::SizeSpace { size },
            (State::Size { .. } | State::SizeSpace { .. }, _) => return Err(BadSize),
            // Extensions are not interpreted, only kept free of control characters; a CR ends
            // the line unless it is inside a quoted string.
            (State::Ext { size, quoted, .. }, b'\r') => State::SizeLf {
                size,
                valid: !quoted,
            },
            (State::Ext { .. }, _) if is_control(byte) => return Err(BadSize),
            (
                State::Ext {
                    size,
                    quoted: true,
                    escaped: true,
                },
                _,
            ) => State::Ext {
                size,
                quoted: true,
                escaped: false,
            },
            (
                State::Ext {
                    size,
                    quoted: true,
                    escaped: false,
                },
                b'\\',
            ) => State::Ext {
                size,
                quoted: true,
                escaped: true,
            },
            (State::Ext { size, quoted, .. }, b'"') => State::Ext {
                size,
                quoted: !quoted,
                escaped: false,
            },
            (State::Ext { .. }, _) => self.state,
            // The line ending is judged before the line itself, so `\r` then anything but `\n`
            // is always a bad line ending.
            (State::SizeLf { valid: false, .. }, b'\n') => return Err(BadSize),
            (
                State::SizeLf {
                    size: 0,
                    valid: true,
                },
                b'\n',
            ) => State::TrailerStart,
            (State::SizeLf { size, valid: true }, b'\n') => State::Data { remaining: size },
            (State::SizeLf { .. }, _) => return Err(BadLineEnding),

            // Chunk data must be followed by exactly CRLF.
            (State::DataCr, b'\r') => State::DataLf,
            (State::DataLf, b'\n') => {
                self.line = 0;
                State::Size {
                    size: 0,
                    digits: false,
                }
            }
            (State::DataCr | State::DataLf, _) => return Err(BadLineEnding),

            // Trailers: `token ":" value CRLF` lines, then an empty line.
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart | State::TrailerName, _) if is_tchar(byte) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerName, b'\r') => State::TrailerLf { valid: false },
            // A leading space or tab (obs-fold), an empty name, whitespace before the colon.
            (State::TrailerStart | State::TrailerName, _) => return Err(BadTrailer),
            (State::TrailerValue, b'\r') => State::TrailerLf { valid: true },
            (State::TrailerValue, _) if is_control(byte) => return Err(BadTrailer),
            (State::TrailerValue, _) => State::TrailerValue,
            (State::TrailerLf { valid: false }, b'\n') => return Err(BadTrailer),
            (State::TrailerLf { valid: true }, b'\n') => State::TrailerStart,
            (State::TrailerLf { .. }, _) => return Err(BadLineEnding),
            (State::EndLf, b'\n') => State::Done,
            (State::EndLf, _) => return Err(BadLineEnding),

            // `scan` skips chunk data itself and never steps in a final state.
            (State::Data { .. } | State::Done | State::Failed(_), _) => self.state,
        };
        Ok(())
    }
}

/// The value of an ASCII hex digit (0 for anything else, which callers have ruled out).
fn hex_value(byte: u8) -> u8 {
    match byte {
        b'0'..=b'9' => byte.wrapping_sub(b'0'),
        b'a'..=b'f' => byte.wrapping_sub(b'a').wrapping_add(10),
        b'A'..=b'F' => byte.wrapping_sub(b'A').wrapping_add(10),
        _ => 0,
    }
}

/// A control character other than HTAB (CR and LF included), which no field value or chunk
/// extension may hold.
fn is_control(byte: u8) -> bool {
    (byte < 0x20 && byte != b'\t') || byte == 0x7f
}

/// A `tchar` of RFC 9110 §5.6.2, the characters of a token (a field or extension name).
fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests;
