//! The daemon's socket: [`Connection`] (one owner, manual pipelining) and [`Client`] (shared,
//! a reader thread routing replies).

use crate::Transport;
use hivebox_core::NtStatus;
use hivebox_proto::{FrameBuffer, Identity, Push, Reply, Request, ServerMessage, VERSION};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};

/// The daemon's socket: `$HIVEBOX_SOCKET`, else `$HIVEBOX_HOME/hivebox.sock`, else the system
/// daemon's `/var/lib/hivebox/hivebox.sock`.
pub fn default_socket() -> PathBuf {
    if let Some(s) = std::env::var_os("HIVEBOX_SOCKET").filter(|s| !s.is_empty()) {
        return PathBuf::from(s);
    }
    if let Some(h) = std::env::var_os("HIVEBOX_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h).join("hivebox.sock");
    }
    PathBuf::from("/var/lib/hivebox/hivebox.sock")
}

fn broken(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// One connection, used by one thread: requests are queued, sent with [`Connection::flush`],
/// and their replies read in order with [`Connection::recv`]; pushes that arrive meanwhile
/// are kept for [`Connection::take_push`].
#[derive(Debug)]
pub struct Connection {
    stream: UnixStream,
    input: FrameBuffer,
    out: Vec<u8>,
    next_id: u32,
    pushes: VecDeque<Push>,
    identity: Identity,
}

impl Connection {
    /// Connects to the daemon at `path` and says hello.
    pub fn connect(path: &Path) -> io::Result<Self> {
        let stream = UnixStream::connect(path)?;
        let mut c = Connection {
            stream,
            input: FrameBuffer::new(),
            out: Vec::new(),
            next_id: 1,
            pushes: VecDeque::new(),
            identity: Identity::default(),
        };
        match c.call(&Request::Hello { version: VERSION })? {
            Reply::Hello(identity) => c.identity = identity,
            Reply::Error { status, message } => {
                return Err(io::Error::other(format!("the daemon refused the connection: {status} {message}")));
            }
            other => return Err(broken(format!("the daemon answered hello with {other:?}"))),
        }
        Ok(c)
    }

    /// Who the daemon found this process to be.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Queues a request; returns its id.
    pub fn queue(&mut self, request: &Request) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        request.encode(id, &mut self.out);
        id
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }

    /// The next message from the daemon (a reply or a push).
    pub fn recv_message(&mut self) -> io::Result<ServerMessage> {
        loop {
            if let Some(body) = self.input.next_frame().map_err(|e| broken(e.to_string()))? {
                return ServerMessage::decode(body).map_err(|e| broken(e.to_string()));
            }
            let spare = self.input.spare(64 << 10);
            let n = self.stream.read(spare)?;
            self.input.filled(64 << 10, n);
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the daemon closed the connection"));
            }
        }
    }

    /// The next reply (pushes that come first are kept): its request id and the reply.
    pub fn recv(&mut self) -> io::Result<(u32, Reply)> {
        loop {
            match self.recv_message()? {
                ServerMessage::Reply(id, reply) => return Ok((id, reply)),
                ServerMessage::Push(p) => self.pushes.push_back(p),
            }
        }
    }

    /// A push received while waiting for replies, if any.
    pub fn take_push(&mut self) -> Option<Push> {
        self.pushes.pop_front()
    }

    /// Sends one request and waits for its reply.
    pub fn call(&mut self, request: &Request) -> io::Result<Reply> {
        let id = self.queue(request);
        self.flush()?;
        loop {
            let (got, reply) = self.recv()?;
            if got == id {
                return Ok(reply);
            }
        }
    }

    /// The underlying socket (to poll it, or to set timeouts).
    pub fn stream(&self) -> &UnixStream {
        &self.stream
    }
}

#[derive(Default)]
struct Waiting {
    replies: HashMap<u32, SyncSender<Reply>>,
    /// Why the connection ended, once it has.
    closed: Option<String>,
}

struct Shared {
    writer: Mutex<(UnixStream, Vec<u8>)>,
    waiting: Mutex<Waiting>,
    next_id: AtomicU32,
    identity: Identity,
}

/// A connection shared by any number of threads. Dropping the last clone closes it (the
/// daemon then closes its handles and rolls back its transactions).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
    pushes: Arc<Mutex<Option<Receiver<Push>>>>,
    _closer: Arc<Closer>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("identity", &self.shared.identity).finish_non_exhaustive()
    }
}

/// Shuts the socket down when the last clone of a client goes, which ends its reader thread.
struct Closer(UnixStream);

impl Drop for Closer {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

impl Client {
    /// Connects to the daemon at `path`.
    pub fn connect(path: &Path) -> io::Result<Self> {
        Connection::connect(path).and_then(Client::from_connection)
    }

    /// Connects to [`default_socket`].
    pub fn connect_default() -> io::Result<Self> {
        Client::connect(&default_socket())
    }

    /// Shares a connection (pushes it had received are delivered first).
    pub fn from_connection(c: Connection) -> io::Result<Self> {
        let writer = c.stream.try_clone()?;
        let closer = c.stream.try_clone()?;
        let (tx, rx) = mpsc::channel();
        let shared = Arc::new(Shared {
            writer: Mutex::new((writer, Vec::new())),
            waiting: Mutex::new(Waiting::default()),
            next_id: AtomicU32::new(c.next_id),
            identity: c.identity.clone(),
        });
        let reader = Arc::downgrade(&shared);
        std::thread::Builder::new().name("hivebox-client".into()).spawn(move || read_loop(c, reader, tx))?;
        Ok(Client { shared, pushes: Arc::new(Mutex::new(Some(rx))), _closer: Arc::new(Closer(closer)) })
    }

    /// The pushes (change notifications, events, decisions) this connection receives; only
    /// the first call gets them.
    pub fn pushes(&self) -> Option<Receiver<Push>> {
        self.pushes.lock().take()
    }
}

fn read_loop(mut c: Connection, shared: std::sync::Weak<Shared>, pushes: Sender<Push>) {
    let mut early: Vec<Push> = c.pushes.drain(..).collect();
    for p in early.drain(..) {
        let _ = pushes.send(p);
    }
    let why = loop {
        match c.recv_message() {
            Ok(ServerMessage::Reply(id, reply)) => {
                let Some(shared) = shared.upgrade() else { return };
                let slot = shared.waiting.lock().replies.remove(&id);
                if let Some(slot) = slot {
                    let _ = slot.send(reply);
                }
            }
            Ok(ServerMessage::Push(p)) => {
                let _ = pushes.send(p);
            }
            Err(e) => break e.to_string(),
        }
    };
    if let Some(shared) = shared.upgrade() {
        let mut w = shared.waiting.lock();
        w.closed = Some(why);
        // Dropping the senders wakes every caller still waiting.
        w.replies.clear();
    }
}

fn disconnected(why: &str) -> Reply {
    Reply::Error { status: NtStatus::STATUS_CONNECTION_DISCONNECTED, message: why.to_owned() }
}

impl Transport for Client {
    fn call(&self, request: Request) -> Reply {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed).max(1);
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut w = self.shared.waiting.lock();
            if let Some(why) = &w.closed {
                return disconnected(why);
            }
            w.replies.insert(id, tx);
        }
        {
            let mut guard = self.shared.writer.lock();
            let (stream, buf) = &mut *guard;
            buf.clear();
            request.encode(id, buf);
            if let Err(e) = stream.write_all(buf) {
                self.shared.waiting.lock().replies.remove(&id);
                return disconnected(&format!("cannot send to the daemon: {e}"));
            }
        }
        match rx.recv() {
            Ok(reply) => reply,
            Err(_) => {
                let why = self.shared.waiting.lock().closed.clone().unwrap_or_default();
                disconnected(&why)
            }
        }
    }

    fn identity(&self) -> &Identity {
        &self.shared.identity
    }
}
