//! Hand-built ClientHellos for bad-input tests, and the real captures.

pub const CURL: &[u8] = include_bytes!("../data/client-hellos/curl-openssl3.bin");
pub const NO_SNI: &[u8] = include_bytes!("../data/client-hellos/openssl-no-sni.bin");

/// Every capture with its SNI (`None` for the one without).
pub const CAPTURES: &[(&str, &[u8], Option<&str>)] = &[
    ("curl", CURL, Some("www.example.com")),
    (
        "openssl-tls13",
        include_bytes!("../data/client-hellos/openssl-s_client-tls13.bin"),
        Some("api.example.com"),
    ),
    (
        "openssl-tls12",
        include_bytes!("../data/client-hellos/openssl-s_client-tls12-only.bin"),
        Some("legacy.example.com"),
    ),
    ("openssl-no-sni", NO_SNI, None),
    (
        "python",
        include_bytes!("../data/client-hellos/python-ssl.bin"),
        Some("py.example.org"),
    ),
    (
        "chromium",
        include_bytes!("../data/client-hellos/chromium.bin"),
        Some("www.chromium-test.example"),
    ),
    (
        "go",
        include_bytes!("../data/client-hellos/go119.bin"),
        Some("go.example.com"),
    ),
    (
        "node",
        include_bytes!("../data/client-hellos/node.bin"),
        Some("node.example.net"),
    ),
];

/// A server_name extension body listing `names` as host_name entries.
pub fn sni_extension(names: &[&[u8]]) -> Vec<u8> {
    let mut list = Vec::new();
    for name in names {
        list.push(0);
        list.extend_from_slice(&(name.len() as u16).to_be_bytes());
        list.extend_from_slice(name);
    }
    let mut body = (list.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(&list);
    body
}

/// A TLS 1.2-style ClientHello handshake message with the given extensions.
pub fn client_hello_message(extensions: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    let mut exts = Vec::new();
    for (kind, data) in extensions {
        exts.extend_from_slice(&kind.to_be_bytes());
        exts.extend_from_slice(&(data.len() as u16).to_be_bytes());
        exts.extend_from_slice(data);
    }
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut message = vec![1];
    message.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    message.extend_from_slice(&body);
    message
}

/// Frames a handshake message into records of at most `size` payload bytes.
pub fn records(message: &[u8], size: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for chunk in message.chunks(size) {
        out.extend_from_slice(&[22, 3, 1]);
        out.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        out.extend_from_slice(chunk);
    }
    out
}

/// The handshake message inside a single-record capture.
pub fn message_of(capture: &[u8]) -> &[u8] {
    &capture[5..]
}

/// A one-record hello whose only extension is server_name with `names`.
pub fn hello_with_names(names: &[&[u8]]) -> Vec<u8> {
    records(&client_hello_message(&[(0, sni_extension(names))]), 16384)
}
