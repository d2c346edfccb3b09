//! Every bound the server holds its callers to, in one place: [`Limits`],
//! what a deployment may tune (the flags of `fieldsync-server` set them),
//! and the fixed bounds of the wire and the listeners beside it. The
//! store's own bounds on what it keeps (page bytes, open enrollment codes,
//! clock skew) are the store's, in `db`; this module imports nothing of the
//! server, so every layer may read it.

use std::time::Duration;

/// Largest request message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Largest request to the admin service: an import of a whole country's
/// tree (about 80,000 units, 7 MiB) is one request, so that it is all or
/// nothing. A request without a valid token is refused before it is read.
pub const MAX_ADMIN_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Largest reply message: a push reply carries each field's current value,
/// which may be longer than what the tablet sent.
pub const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// Concurrent requests per connection.
pub const MAX_CONCURRENT_PER_CONNECTION: usize = 32;
/// Streams one HTTP/2 connection may have open at once; further ones are
/// refused by HTTP/2 itself.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 64;
/// Longest a call may take to produce its reply before it is answered
/// DEADLINE_EXCEEDED (the default of [`Limits::request_timeout`]).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a new gRPC connection may take to begin its first call (the
/// default of [`Limits::handshake_timeout`]).
/// Generous: a tablet on a slow rural link needs several round trips
/// (TCP, TLS, the HTTP/2 preface, the request) of a second or more each.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Free bytes the disk must have again before the store is reopened after
/// a failed write (besides the free-space reserve of [`Limits`]).
pub const REOPEN_FREE_BYTES: u64 = 4 * 1024 * 1024;

/// Connections the kernel may queue before the server accepts them: enough
/// for a thousand tablets reaching the commune office at once.
pub const LISTEN_BACKLOG: u32 = 4_096;

/// Browser connections open at once at the web listener; one beyond is
/// closed as it arrives.
pub const WEB_MAX_CONNECTIONS: usize = 256;

/// Longest a browser may take to send one whole request head (the default
/// of [`Limits::header_read_timeout`]).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a browser connection may go without sending or receiving a
/// byte while the server waits for it; it is closed after that, so idle or
/// stalled connections do not hold the listener's permits.
pub const WEB_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// What a web request may take beyond [`Limits::request_timeout`], body
/// included, before it is answered 408: the app's Connect calls inside it
/// get their DEADLINE_EXCEEDED first.
pub const WEB_REQUEST_MARGIN: Duration = Duration::from_secs(5);
/// Largest form body a web page accepts, in bytes.
pub const WEB_MAX_FORM_BYTES: usize = 64 * 1024;
/// Web requests handled at once; more wait their turn.
pub const WEB_MAX_CONCURRENT_REQUESTS: usize = 64;
/// Queue downloads built at once (each may hold 100,000 rows).
pub const WEB_MAX_DOWNLOADS: usize = 2;

/// A web session unused this long is forgotten.
pub const SESSION_IDLE: Duration = Duration::from_secs(8 * 60 * 60);
/// No web session lives longer than this.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Most web sessions held at once.
pub const MAX_SESSIONS: usize = 10_000;
/// Most web sessions one user holds at once (browsers, tabs kept signed in).
pub const SESSIONS_PER_USER: usize = 16;

/// Bounds on what one request may ask of the server.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Mutations per push.
    pub max_batch: usize,
    /// Changes per pull page.
    pub max_page: usize,
    /// Pages buffered for a slow reader before the server waits for it.
    pub pull_buffer: usize,
    /// Calls per second each user may make, on average...
    pub calls_per_second: u32,
    /// ...and in a burst.
    pub call_burst: u32,
    /// Open connections; further ones are closed as they arrive.
    pub max_connections: usize,
    /// Open gRPC connections from one IP address (a commune office's
    /// tablets may share one); further ones from it are closed as they
    /// arrive, so one address cannot fill `max_connections`. The machine's
    /// own address (a reverse proxy on it) is not held to this.
    pub connections_per_ip: usize,
    /// Longest a new connection may take, from being accepted, to begin its
    /// first call (TLS handshake, HTTP/2 preface and request head included);
    /// it is closed after that.
    pub handshake_timeout: std::time::Duration,
    /// Open web connections from one IP address (the web listener holds at
    /// most [`WEB_MAX_CONNECTIONS`]).
    pub web_connections_per_ip: usize,
    /// Longest a browser may take to send a whole request head (and, on a
    /// kept-alive connection, to begin the next one); bytes sent slowly do
    /// not extend it.
    pub header_read_timeout: std::time::Duration,
    /// Longest a call may take to produce its reply (DEADLINE_EXCEEDED after).
    pub request_timeout: std::time::Duration,
    /// Pull streams open at once, server-wide: a pull beyond them waits up
    /// to `pull_queue_wait` for one to end, then gets RESOURCE_EXHAUSTED.
    /// Each open pull holds at most `pull_buffer` + 1 pages of at most
    /// [`PAGE_BYTES`](crate::db::PAGE_BYTES), so this bounds the memory
    /// that readers too slow (or unwilling) to read can pin.
    pub max_pulls: usize,
    pub pull_queue_wait: std::time::Duration,
    /// Pull streams one user may have open at once.
    pub pulls_per_user: usize,
    /// Pushes handed to the store at once; later ones wait their turn, in
    /// arrival order, without holding a thread, so a burst of pushes never
    /// fills the blocking pool ahead of the pulls and reads queued behind it.
    pub pushes_in_flight: usize,
    /// Writes are refused with RESOURCE_EXHAUSTED while the disk of the
    /// store has less than this free...
    pub min_free_bytes: u64,
    /// ...or less than this share of the disk, in percent (admins' writes
    /// excepted, so that an admin can still stop what fills it).
    pub min_free_percent: f64,
    /// Bytes of records each user's writes may add per day (UTC), far
    /// above a surveyor's real day, so that one token cannot fill the
    /// disk; 0 means no limit.
    pub user_bytes_per_day: u64,
    /// How often the server checks that its store can write (health says
    /// NOT_SERVING while it cannot) and, after a failed write, tries to
    /// reopen it.
    pub disk_check_interval: std::time::Duration,
    /// Wrong enrollment codes one address may try a minute (`Enroll.Redeem`);
    /// beyond that its redeems are refused RESOURCE_EXHAUSTED until the
    /// minute has given some back.
    pub enroll_failures_per_minute: u32,
    /// The server's address as surveyors' devices reach it
    /// (`--public-url`, e.g. `https://ntm.example.vn`): the app's URL in
    /// enrollment codes is this with `/app/`. Unset: the web address the
    /// caller used (web pages) or the web listener's (gRPC).
    pub public_url: Option<String>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_batch: 1_000,
            max_page: 500,
            pull_buffer: 2,
            calls_per_second: 50,
            call_burst: 1_000,
            max_connections: 10_000,
            connections_per_ip: 500,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            web_connections_per_ip: 32,
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_pulls: 256,
            pull_queue_wait: std::time::Duration::from_secs(10),
            pulls_per_user: 8,
            pushes_in_flight: 8,
            min_free_bytes: 256 * 1024 * 1024,
            min_free_percent: 2.0,
            user_bytes_per_day: 64 * 1024 * 1024,
            disk_check_interval: std::time::Duration::from_secs(2),
            enroll_failures_per_minute: 10,
            public_url: None,
        }
    }
}
