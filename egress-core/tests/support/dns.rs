//! An in-process authoritative DNS server on hickory-server, for integration tests.
//!
//! It listens on `127.0.0.1` on one OS-chosen port over both UDP and TCP, answers from a table
//! the test edits while it runs, and counts the queries it receives. It runs on the test's
//! Tokio runtime and stops when dropped (or with [`DnsServer::shutdown`]).
//!
//! Answers:
//!
//! - A name set with [`DnsServer::set`] gets its IPv4 addresses for A queries and its IPv6
//!   addresses for AAAA queries, with TTL [`DEFAULT_TTL`] (0 s: resolvers do not cache them,
//!   so every lookup reaches the server; use [`DnsServer::set_with_ttl`] to test caching).
//! - A known name with no address of the asked type (or any other query type) gets NOERROR
//!   with an empty answer section.
//! - An unknown name gets NXDOMAIN.
//! - Negative answers carry no SOA, so resolvers do not cache them either.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "a fixture shared by several test crates: each uses part of it, from a private module"
)]

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{A, AAAA};
use hickory_server::proto::rr::{RData, Record, RecordType};
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};

/// TTL of the records of [`DnsServer::set`] and [`DnsServer::set_sequence`], in seconds.
pub const DEFAULT_TTL: u32 = 0;

/// How long the server keeps an idle TCP connection open: longer than any test waits
/// between two queries on one connection, short enough not to pile up connections.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running in-process DNS server. Dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: Server<Handler>,
}

impl fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DnsServer {
    /// Starts a server on `127.0.0.1`, UDP and TCP on the same OS-chosen port.
    ///
    /// Panics if no such port can be bound.
    pub async fn start() -> DnsServer {
        let (udp, tcp, addr) = bind_udp_and_tcp().await;
        let state = Arc::new(Mutex::new(State::default()));
        let mut server = Server::new(Handler {
            state: Arc::clone(&state),
        });
        server.register_socket(udp);
        server.register_listener(tcp, TCP_TIMEOUT, 32);
        DnsServer {
            addr,
            state,
            server,
        }
    }

    /// The address to use as nameserver (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers `name` with `ips` (A records for the IPv4 ones, AAAA for the IPv6 ones), with
    /// TTL [`DEFAULT_TTL`]. An empty list makes the name exist with no address.
    pub fn set(&self, name: &str, ips: Vec<IpAddr>) {
        self.set_sequence_with_ttl(name, vec![ips], DEFAULT_TTL);
    }

    /// Like [`DnsServer::set`], with the records' TTL in seconds.
    pub fn set_with_ttl(&self, name: &str, ips: Vec<IpAddr>, ttl: u32) {
        self.set_sequence_with_ttl(name, vec![ips], ttl);
    }

    /// Answers successive queries for `name` with successive entries of `answers`, wrapping
    /// around, with TTL [`DEFAULT_TTL`]. A and AAAA queries advance separately, so one
    /// dual-stack lookup (an A and an AAAA query) sees one entry.
    pub fn set_sequence(&self, name: &str, answers: Vec<Vec<IpAddr>>) {
        self.set_sequence_with_ttl(name, answers, DEFAULT_TTL);
    }

    /// Like [`DnsServer::set_sequence`], with the records' TTL in seconds.
    pub fn set_sequence_with_ttl(&self, name: &str, answers: Vec<Vec<IpAddr>>, ttl: u32) {
        let entry = Entry {
            answers,
            ttl,
            next: HashMap::new(),
        };
        self.lock().names.insert(normalise(name), entry);
    }

    /// Forgets `name`: queries for it get NXDOMAIN again. Its query count is kept.
    pub fn remove(&self, name: &str) {
        self.lock().names.remove(&normalise(name));
    }

    /// How many queries (of any type, over UDP or TCP) the server has received for `name`.
    pub fn queries(&self, name: &str) -> usize {
        let name = normalise(name);
        self.lock().log.iter().filter(|(n, _)| *n == name).count()
    }

    /// Every query received so far, in order: the name (lower case, no trailing dot) and type.
    pub fn query_log(&self) -> Vec<(String, RecordType)> {
        self.lock().log.clone()
    }

    /// Stops the server and waits until its sockets are closed.
    pub async fn shutdown(mut self) {
        // An error only says that a listener had already stopped, which is fine here.
        let _ = self.server.shutdown_gracefully().await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds UDP on an OS-chosen port of 127.0.0.1, then TCP on the same port, retrying with
/// another port when that TCP port is taken. A test fixture: failing to bind fails the test.
#[expect(
    clippy::expect_used,
    clippy::panic,
    reason = "a fixture that cannot bind fails its test"
)]
async fn bind_udp_and_tcp() -> (UdpSocket, TcpListener, SocketAddr) {
    for _ in 0..100 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind a UDP socket on 127.0.0.1");
        let addr = udp
            .local_addr()
            .expect("local address of the DNS UDP socket");
        if let Ok(tcp) = TcpListener::bind(addr).await {
            return (udp, tcp, addr);
        }
    }
    panic!("no port of 127.0.0.1 was free for both UDP and TCP");
}

/// Names are kept lower case without the trailing dot.
fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

#[derive(Default)]
struct State {
    names: HashMap<String, Entry>,
    /// Every query received: name and type.
    log: Vec<(String, RecordType)>,
}

struct Entry {
    /// The answer sets, used in turn.
    answers: Vec<Vec<IpAddr>>,
    ttl: u32,
    /// Index of the next answer set, per query type.
    next: HashMap<RecordType, usize>,
}

impl State {
    /// Records the query and returns the response code and the addresses to answer with.
    fn answer(&mut self, name: String, query_type: RecordType) -> (ResponseCode, Vec<IpAddr>, u32) {
        self.log.push((name.clone(), query_type));
        let Some(entry) = self.names.get_mut(&name) else {
            return (ResponseCode::NXDomain, Vec::new(), 0);
        };
        let wanted: fn(&IpAddr) -> bool = match query_type {
            RecordType::A => IpAddr::is_ipv4,
            RecordType::AAAA => IpAddr::is_ipv6,
            _ => return (ResponseCode::NoError, Vec::new(), entry.ttl),
        };
        if entry.answers.is_empty() {
            return (ResponseCode::NoError, Vec::new(), entry.ttl);
        }
        let next = entry.next.entry(query_type).or_insert(0);
        let set = &entry.answers[*next % entry.answers.len()];
        *next = next.wrapping_add(1);
        let ips = set.iter().copied().filter(wanted).collect();
        (ResponseCode::NoError, ips, entry.ttl)
    }
}

struct Handler {
    state: Arc<Mutex<State>>,
}

impl Handler {
    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;

        // Echo EDNS so that UDP answers may be as large as the client allows.
        let edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }

        let query = match request.queries.queries() {
            [query] if request.metadata.op_code == OpCode::Query => query,
            [_] => return send_error(response, builder, metadata, ResponseCode::NotImp).await,
            _ => return send_error(response, builder, metadata, ResponseCode::FormErr).await,
        };

        let name = normalise(&query.name().to_string());
        let (code, ips, ttl) = self
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .answer(name, query.query_type());
        metadata.response_code = code;

        let owner = query.original().name().clone();
        let records: Vec<Record> = ips
            .into_iter()
            .map(|ip| {
                let rdata = match ip {
                    IpAddr::V4(v4) => RData::A(A::from(v4)),
                    IpAddr::V6(v6) => RData::AAAA(AAAA::from(v6)),
                };
                Record::from_rdata(owner.clone(), ttl, rdata)
            })
            .collect();
        let message = builder.build(metadata, records.iter(), [], [], []);
        match response.send_response(message).await {
            Ok(info) => info,
            Err(_) => failed(metadata),
        }
    }
}

async fn send_error<R: ResponseHandler>(
    mut response: R,
    builder: MessageResponseBuilder<'_>,
    mut metadata: Metadata,
    code: ResponseCode,
) -> ResponseInfo {
    metadata.response_code = code;
    match response
        .send_response(builder.build_no_records(metadata))
        .await
    {
        Ok(info) => info,
        Err(_) => failed(metadata),
    }
}

/// What the handler reports when a response could not be sent.
fn failed(mut metadata: Metadata) -> ResponseInfo {
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

// `RequestHandler` is declared with `#[async_trait]`; this is the signature it expands to.
impl RequestHandler for Handler {
    fn handle_request<'life0, 'life1, 'async_trait, R, T>(
        &'life0 self,
        request: &'life1 Request,
        response_handle: R,
    ) -> Pin<Box<dyn Future<Output = ResponseInfo> + Send + 'async_trait>>
    where
        R: 'async_trait + ResponseHandler,
        T: 'async_trait + Time,
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(self.respond(request, response_handle))
    }
}
