//! A small test-side ClientHello builder (to craft good and bad hellos) and decoder
//! (to check the expectations written down for the captured vectors).

/// Extension types used by the tests.
pub(crate) const SERVER_NAME: u16 = 0x0000;
pub(crate) const ALPN: u16 = 0x0010;
pub(crate) const PADDING: u16 = 0x0015;
pub(crate) const SUPPORTED_VERSIONS: u16 = 0x002b;
pub(crate) const ECH: u16 = 0xfe0d;

/// A ClientHello handshake message, field by field, with overrides for every length so
/// that inconsistent ones can be built.
#[derive(Debug, Clone)]
pub(crate) struct HelloBuilder {
    pub(crate) msg_type: u8,
    /// Overrides the 24-bit handshake length.
    pub(crate) handshake_len: Option<u32>,
    pub(crate) legacy_version: u16,
    pub(crate) random: [u8; 32],
    pub(crate) session_id: Vec<u8>,
    pub(crate) session_id_len: Option<u8>,
    pub(crate) cipher_suites: Vec<u8>,
    pub(crate) cipher_suites_len: Option<u16>,
    pub(crate) compression: Vec<u8>,
    pub(crate) compression_len: Option<u8>,
    /// `None`: the body ends after the compression methods (no extensions block).
    pub(crate) extensions: Option<Vec<(u16, Vec<u8>)>>,
    /// Overrides the extensions-block length.
    pub(crate) extensions_len: Option<u16>,
    /// Raw bytes at the end of the extensions block (counted in its length).
    pub(crate) extensions_tail: Vec<u8>,
    /// Raw bytes after the extensions block (counted in the handshake length).
    pub(crate) body_tail: Vec<u8>,
}

impl Default for HelloBuilder {
    fn default() -> Self {
        let mut random = [0u8; 32];
        for (i, b) in random.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap().wrapping_mul(37) ^ 0x5a;
        }
        Self {
            msg_type: 1,
            handshake_len: None,
            legacy_version: 0x0303,
            random,
            session_id: (0..32).map(|i| 0xe0 ^ i).collect(),
            session_id_len: None,
            cipher_suites: vec![0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2f],
            cipher_suites_len: None,
            compression: vec![0],
            compression_len: None,
            extensions: Some(Vec::new()),
            extensions_len: None,
            extensions_tail: Vec::new(),
            body_tail: Vec::new(),
        }
    }
}

impl HelloBuilder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A hello with one `server_name` for `name` and nothing else.
    pub(crate) fn with_sni(name: &[u8]) -> Self {
        Self::new().ext(SERVER_NAME, sni_body(&[name]))
    }

    /// Appends an extension.
    pub(crate) fn ext(mut self, ext_type: u16, body: Vec<u8>) -> Self {
        self.extensions
            .get_or_insert_with(Vec::new)
            .push((ext_type, body));
        self
    }

    pub(crate) fn body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.legacy_version.to_be_bytes());
        out.extend_from_slice(&self.random);
        out.push(
            self.session_id_len
                .unwrap_or_else(|| u8::try_from(self.session_id.len()).unwrap()),
        );
        out.extend_from_slice(&self.session_id);
        out.extend_from_slice(
            &self
                .cipher_suites_len
                .unwrap_or_else(|| u16::try_from(self.cipher_suites.len()).unwrap())
                .to_be_bytes(),
        );
        out.extend_from_slice(&self.cipher_suites);
        out.push(
            self.compression_len
                .unwrap_or_else(|| u8::try_from(self.compression.len()).unwrap()),
        );
        out.extend_from_slice(&self.compression);
        if self.extensions.is_some() {
            let block = self.extensions_block();
            let len = self
                .extensions_len
                .unwrap_or_else(|| u16::try_from(block.len()).unwrap());
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&block);
        }
        out.extend_from_slice(&self.body_tail);
        out
    }

    /// The extensions block without its length: the extensions, then `extensions_tail`.
    pub(crate) fn extensions_block(&self) -> Vec<u8> {
        let mut block = Vec::new();
        for (ext_type, body) in self.extensions.iter().flatten() {
            block.extend_from_slice(&ext_type.to_be_bytes());
            block.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
            block.extend_from_slice(body);
        }
        block.extend_from_slice(&self.extensions_tail);
        block
    }

    /// The handshake message: type, 24-bit length, body.
    pub(crate) fn handshake(&self) -> Vec<u8> {
        let body = self.body();
        let len = self
            .handshake_len
            .unwrap_or_else(|| u32::try_from(body.len()).unwrap());
        handshake_message(self.msg_type, len, &body)
    }

    /// The handshake message in a single handshake record (version 0x0301).
    pub(crate) fn record(&self) -> Vec<u8> {
        crate::record(22, 0x0301, &self.handshake())
    }
}

/// A handshake message with an explicit length field.
pub(crate) fn handshake_message(msg_type: u8, len: u32, body: &[u8]) -> Vec<u8> {
    assert!(len < 1 << 24);
    let mut out = vec![msg_type];
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.extend_from_slice(body);
    out
}

/// A `server_name` extension body listing `names`, all of type host_name (0).
pub(crate) fn sni_body(names: &[&[u8]]) -> Vec<u8> {
    let entries: Vec<(u8, &[u8])> = names.iter().map(|n| (0u8, *n)).collect();
    sni_body_typed(&entries)
}

/// A `server_name` extension body with explicit name types.
pub(crate) fn sni_body_typed(entries: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (name_type, name) in entries {
        list.push(*name_type);
        list.extend_from_slice(&u16::try_from(name.len()).unwrap().to_be_bytes());
        list.extend_from_slice(name);
    }
    with_u16_len(&list)
}

/// An ALPN extension body.
pub(crate) fn alpn_body(protocols: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for p in protocols {
        list.push(u8::try_from(p.len()).unwrap());
        list.extend_from_slice(p);
    }
    with_u16_len(&list)
}

/// A client `supported_versions` extension body.
pub(crate) fn versions_body(versions: &[u16]) -> Vec<u8> {
    let mut out = vec![u8::try_from(versions.len() * 2).unwrap()];
    for v in versions {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

pub(crate) fn with_u16_len(data: &[u8]) -> Vec<u8> {
    let mut out = u16::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    out.extend_from_slice(data);
    out
}

/// What the test-side decoder finds in a well-formed ClientHello handshake message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub(crate) server_name: Option<Vec<u8>>,
    pub(crate) alpn: Vec<Vec<u8>>,
    /// The raw supported_versions list (GREASE included), or `None` when absent.
    pub(crate) supported_versions: Option<Vec<u16>>,
    pub(crate) legacy_version: u16,
    pub(crate) has_ech: bool,
    pub(crate) extension_types: Vec<u16>,
    /// Offset in the body just after the compression methods.
    pub(crate) compression_end: usize,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let out = &self.data[self.pos..self.pos + n];
        self.pos += n;
        out
    }
    fn u8(&mut self) -> usize {
        usize::from(self.take(1)[0])
    }
    fn u16(&mut self) -> usize {
        let b = self.take(2);
        usize::from(u16::from_be_bytes([b[0], b[1]]))
    }
    fn done(&self) -> bool {
        self.pos == self.data.len()
    }
}

/// Decodes a well-formed ClientHello handshake message (panics on anything else: this is
/// for checking the test data, not the reader).
pub(crate) fn decode(handshake: &[u8]) -> Decoded {
    assert_eq!(handshake[0], 1, "test data: not a client_hello");
    let len = (usize::from(handshake[1]) << 16)
        | (usize::from(handshake[2]) << 8)
        | usize::from(handshake[3]);
    assert_eq!(len + 4, handshake.len(), "test data: handshake length");
    let mut c = Cursor {
        data: &handshake[4..],
        pos: 0,
    };
    let legacy_version = u16::try_from(c.u16()).unwrap();
    c.take(32);
    let n = c.u8();
    c.take(n);
    let n = c.u16();
    c.take(n);
    let n = c.u8();
    c.take(n);
    let compression_end = c.pos;
    let mut out = Decoded {
        server_name: None,
        alpn: Vec::new(),
        supported_versions: None,
        legacy_version,
        has_ech: false,
        extension_types: Vec::new(),
        compression_end,
    };
    if c.done() {
        return out;
    }
    let n = c.u16();
    let mut exts = Cursor {
        data: c.take(n),
        pos: 0,
    };
    assert!(c.done(), "test data: bytes after the extensions");
    while !exts.done() {
        let ext_type = u16::try_from(exts.u16()).unwrap();
        let n = exts.u16();
        let mut body = Cursor {
            data: exts.take(n),
            pos: 0,
        };
        out.extension_types.push(ext_type);
        match ext_type {
            SERVER_NAME => {
                let n = body.u16();
                let mut list = Cursor {
                    data: body.take(n),
                    pos: 0,
                };
                assert_eq!(list.u8(), 0);
                let n = list.u16();
                out.server_name = Some(list.take(n).to_vec());
                assert!(list.done());
            }
            ALPN => {
                let n = body.u16();
                let mut list = Cursor {
                    data: body.take(n),
                    pos: 0,
                };
                while !list.done() {
                    let n = list.u8();
                    out.alpn.push(list.take(n).to_vec());
                }
            }
            SUPPORTED_VERSIONS => {
                let n = body.u8();
                let list = body.take(n);
                out.supported_versions = Some(
                    list.chunks(2)
                        .map(|v| u16::from_be_bytes([v[0], v[1]]))
                        .collect(),
                );
            }
            ECH => {
                out.has_ech = true;
                body.take(body.data.len());
            }
            _ => {
                body.take(body.data.len());
            }
        }
        assert!(
            body.done(),
            "test data: extension {ext_type:#06x} has trailing bytes"
        );
    }
    out
}

/// True for the RFC 8701 GREASE values 0x0a0a, 0x1a1a, ..., 0xfafa.
pub(crate) fn is_grease(v: u16) -> bool {
    let [hi, lo] = v.to_be_bytes();
    hi == lo && lo & 0x0f == 0x0a
}

/// The versions the reader must report for a decoded hello.
pub(crate) fn expected_versions(d: &Decoded) -> Vec<u16> {
    match &d.supported_versions {
        Some(list) => list.iter().copied().filter(|v| !is_grease(*v)).collect(),
        None => vec![d.legacy_version],
    }
}

#[test]
fn builder_round_trips_through_the_decoder() {
    let hs = HelloBuilder::with_sni(b"a.example")
        .ext(ALPN, alpn_body(&[b"h2", b"http/1.1"]))
        .ext(SUPPORTED_VERSIONS, versions_body(&[0x1a1a, 0x0304, 0x0303]))
        .ext(ECH, vec![0, 1, 2])
        .handshake();
    let d = decode(&hs);
    assert_eq!(d.server_name.as_deref(), Some(&b"a.example"[..]));
    assert_eq!(d.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(expected_versions(&d), vec![0x0304, 0x0303]);
    assert!(d.has_ech);
    assert_eq!(
        d.extension_types,
        vec![SERVER_NAME, ALPN, SUPPORTED_VERSIONS, ECH]
    );
}
