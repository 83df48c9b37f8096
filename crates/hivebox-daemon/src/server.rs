//! The socket server: `$HIVEBOX_HOME/hivebox.sock` (mode 0660), one thread per connection.
//!
//! A connection's thread reads whatever has arrived, performs every whole request in it in
//! order, and writes all their replies at once: pipelined requests cost one read and one write
//! per batch. Pushes (watch completions, events, decisions) go through a bounded queue and a
//! second thread per connection, so a client that does not read its pushes slows nobody else
//! (past the bound its pushes are dropped and counted).
//!
//! A connection from a process in a box (its cgroup `hivebox/<box>`) is served only once that
//! box is: its hive is mounted (on demand) and the isolation filter serves it. A box that
//! cannot be served (unknown, damaged) gets the connection refused, with one warning logged:
//! the client's hello is answered `Error` (`STATUS_ACCESS_DENIED`, the reason) and the
//! connection closed. The box is never served the host registry instead.
//!
//! A connection whose bytes do not decode (garbage, a length past the limit, a request before
//! the hello) is closed, with one log line; so is one that ends inside a message. Either way its
//! session is dropped: handles closed, transactions rolled back. Nothing of other connections
//! is touched.

use crate::boxes::BoxManager;
use crate::decide::DecisionHub;
use crate::identity::{self, Peer};
use crate::netdecide::{Asker, NetDecisions, Question};
use crate::protection::Protection;
use crate::session::{Host, Session};
use anyhow::{Context, Result};
use hivebox_core::isolate::IsolationFilter;
use hivebox_core::protect::ProtectionEvent;
use hivebox_core::{DeferredSyncs, NtStatus};
use hivebox_hive::{Home, SystemClock};
use hivebox_proto::{FrameBuffer, Identity, Push, Reply, Request, VERSION};
use parking_lot::Mutex;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

/// Pushes a connection may have queued before further ones are dropped.
const PUSH_QUEUE: usize = 4096;
/// Bytes read at once.
const READ_CHUNK: usize = 64 << 10;

/// Where to run.
#[derive(Clone, Debug)]
pub struct DaemonOptions {
    /// The home (store, policy, events).
    pub home: PathBuf,
    /// The socket (default `<home>/hivebox.sock`).
    pub socket: Option<PathBuf>,
}

/// The writing side of one connection: replies from its thread, pushes through a queue.
pub struct Out {
    stream: Mutex<UnixStream>,
    pushes: Mutex<Option<SyncSender<Push>>>,
    dropped: AtomicU64,
    conn: u64,
}

impl std::fmt::Debug for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Out").field("conn", &self.conn).finish_non_exhaustive()
    }
}

impl Out {
    fn new(stream: UnixStream, conn: u64) -> Self {
        Out { stream: Mutex::new(stream), pushes: Mutex::new(None), dropped: AtomicU64::new(0), conn }
    }

    /// Queues a push; never blocks. The connection's push thread starts on the first one.
    pub fn push(self: &Arc<Self>, push: Push) {
        let mut slot = self.pushes.lock();
        if slot.is_none() {
            let (tx, rx) = mpsc::sync_channel::<Push>(PUSH_QUEUE);
            let out = Arc::downgrade(self);
            let spawned = std::thread::Builder::new().name(format!("hivebox-push-{}", self.conn)).spawn(move || {
                let mut buf = Vec::new();
                while let Ok(p) = rx.recv() {
                    buf.clear();
                    p.encode(&mut buf);
                    while let Ok(more) = rx.try_recv() {
                        more.encode(&mut buf);
                    }
                    let Some(out) = out.upgrade() else { return };
                    if out.stream.lock().write_all(&buf).is_err() {
                        return;
                    }
                }
            });
            match spawned {
                Ok(_) => *slot = Some(tx),
                Err(e) => {
                    tracing::error!(conn = self.conn, "cannot start a push thread: {e}");
                    return;
                }
            }
        }
        let Some(tx) = slot.as_ref() else { return };
        match tx.try_send(push) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                    tracing::warn!(conn = self.conn, "the client does not read its pushes; dropping them");
                }
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn write(&self, bytes: &[u8]) -> io::Result<()> {
        self.stream.lock().write_all(bytes)
    }
}

/// Live event subscribers.
#[derive(Default)]
struct Subscribers {
    list: Mutex<Vec<Subscriber>>,
}

struct Subscriber {
    conn: u64,
    box_name: Option<String>,
    verdict: Option<String>,
    out: Arc<Out>,
}

impl Subscribers {
    fn publish(&self, event: &ProtectionEvent, line: &str) {
        self.publish_line(event.box_name.as_deref(), event.verdict.name(), line);
    }

    fn publish_line(&self, box_name: Option<&str>, verdict: &str, line: &str) {
        for s in self.list.lock().iter() {
            let box_ok = s.box_name.as_deref().is_none_or(|b| box_name == Some(b));
            let verdict_ok = s.verdict.as_deref().is_none_or(|v| v == verdict);
            if box_ok && verdict_ok {
                s.out.push(Push::Event(line.to_owned()));
            }
        }
    }
}

struct Shared {
    home: Arc<Home>,
    boxes: Arc<BoxManager>,
    protection: Protection,
    decisions: Arc<DecisionHub>,
    subscribers: Arc<Subscribers>,
    net: Arc<NetDecisions>,
    uid: u32,
    stopping: AtomicBool,
    next_conn: AtomicU64,
    /// Live connections, to shut down on stop.
    conns: Mutex<Vec<(u64, UnixStream)>>,
    reload_lock: Mutex<()>,
}

impl Host for Shared {
    fn reload_policy(&self) -> std::result::Result<String, String> {
        let _one_at_a_time = self.reload_lock.lock();
        match self.protection.reload() {
            Ok(summary) => {
                tracing::info!("{summary}");
                Ok(summary)
            }
            Err(e) => {
                let message = format!("{e:#}");
                tracing::warn!("policy reload refused, the running policy stays: {message}");
                Err(message)
            }
        }
    }
}

/// A running daemon.
pub struct Daemon {
    shared: Arc<Shared>,
    socket: PathBuf,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon").field("socket", &self.socket).finish_non_exhaustive()
    }
}

impl Daemon {
    /// Opens the store (failing if another process holds its lock), registers the isolation
    /// and protection filters, starts watching the ephemeral boxes, and starts serving the
    /// socket. Boxes are mounted when first needed.
    pub fn start(opts: &DaemonOptions) -> Result<Daemon> {
        std::fs::create_dir_all(&opts.home)
            .with_context(|| format!("cannot create the home directory {}", opts.home.display()))?;
        let home = hivebox_hive::open_home(&opts.home, Arc::new(SystemClock), false)
            .map_err(|e| anyhow::anyhow!("the registry store could not be opened: {e}"))?;
        let recovery = home.recovery();
        tracing::info!(home = %opts.home.display(), "store opened: {recovery:?}");
        let home = Arc::new(home);
        // Once per registry, before anything is served.
        let isolation = IsolationFilter::new();
        isolation
            .register(&home.registry)
            .map_err(|status| anyhow::anyhow!("cannot register the isolation filter: {status}"))?;
        let boxes = BoxManager::new(home.clone(), isolation);
        let subscribers = Arc::new(Subscribers::default());
        let hook = {
            let s = subscribers.clone();
            Box::new(move |e: &ProtectionEvent, line: &str| s.publish(e, line))
        };
        let protection = Protection::install(&opts.home, &home.registry, Arc::new(SystemClock), Some(hook))?;
        if let Err(e) = boxes.recover_commits() {
            tracing::warn!("{e}");
        }
        let decisions = Arc::new(DecisionHub::new());
        protection.filter().set_decider(Some(decisions.clone()));
        let socket = opts.socket.clone().unwrap_or_else(|| opts.home.join("hivebox.sock"));
        // The store's lock is ours, so a socket file left here is a dead daemon's.
        match std::fs::remove_file(&socket) {
            Ok(()) => tracing::info!(socket = %socket.display(), "removed a stale socket"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove the old socket {}", socket.display())),
        }
        let listener = UnixListener::bind(&socket).with_context(|| format!("cannot listen on {}", socket.display()))?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o660))
            .with_context(|| format!("cannot set the mode of {}", socket.display()))?;
        boxes.start_watcher().context("cannot start the ephemeral boxes' watcher")?;
        let publish: crate::netdecide::Publish = {
            let s = subscribers.clone();
            Arc::new(move |b: Option<&str>, verdict: &str, line: &str| s.publish_line(b, verdict, line))
        };
        let net = Arc::new(NetDecisions::new(
            opts.home.join(hivebox_hive::BOXES_DIR),
            decisions.clone(),
            protection.log().clone(),
            publish,
        ));
        let shared = Arc::new(Shared {
            home,
            boxes,
            protection,
            decisions,
            subscribers,
            net,
            uid: rustix::process::geteuid().as_raw(),
            stopping: AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            conns: Mutex::new(Vec::new()),
            reload_lock: Mutex::new(()),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("hivebox-accept".into())
            .spawn(move || accept_loop(listener, s))
            .context("cannot start the accept thread")?;
        tracing::info!(socket = %socket.display(), pid = std::process::id(), "hivebox daemon listening");
        Ok(Daemon { shared, socket, accept: Some(accept) })
    }

    /// The registry it serves.
    pub fn registry(&self) -> &hivebox_core::Registry {
        &self.shared.home.registry
    }

    /// The boxes it serves.
    pub fn boxes(&self) -> &Arc<BoxManager> {
        &self.shared.boxes
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Reloads the policy file (what `SIGHUP` does).
    pub fn reload(&self) -> std::result::Result<String, String> {
        self.shared.reload_policy()
    }

    /// Stops: no new connections, every connection closed (handles closed, transactions
    /// rolled back), events written.
    pub fn stop(mut self) -> Result<()> {
        self.halt();
        // Connection threads hold the rest; they end now that their sockets are shut.
        let mut shared = self.shared.clone();
        drop(self);
        for _ in 0..500 {
            match Arc::try_unwrap(shared) {
                Ok(s) => {
                    let Shared { protection, home, boxes, .. } = s;
                    boxes.shutdown();
                    drop(boxes);
                    let n = protection.finish()?;
                    drop(home);
                    tracing::info!(events = n, "hivebox daemon stopped");
                    return Ok(());
                }
                Err(s) => {
                    shared = s;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
        }
        anyhow::bail!("connections did not close within 5 seconds")
    }

    fn halt(&mut self) {
        if self.shared.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the accept loop.
        let _ = UnixStream::connect(&self.socket);
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        let _ = std::fs::remove_file(&self.socket);
        for (_, s) in self.shared.conns.lock().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        self.shared.boxes.shutdown();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.halt();
    }
}

fn accept_loop(listener: UnixListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                // EMFILE and the like: let descriptors free up rather than spin.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let weak = Arc::downgrade(&shared);
        if let Ok(s) = stream.try_clone() {
            shared.conns.lock().push((conn, s));
        }
        let spawned = std::thread::Builder::new().name(format!("hivebox-conn-{conn}")).spawn(move || {
            serve(stream, conn, &weak);
            if let Some(shared) = weak.upgrade() {
                shared.conns.lock().retain(|(c, _)| *c != conn);
            }
        });
        if let Err(e) = spawned {
            tracing::error!(conn, "cannot start a connection thread: {e}");
            shared.conns.lock().retain(|(c, _)| *c != conn);
        }
    }
}

fn identity_of(peer: &Peer, shared: &Shared) -> Identity {
    let policy = shared.protection.filter().policy();
    let actor = hivebox_core::protect::Actor {
        image: &peer.image,
        pid: peer.pid,
        uid: Some(peer.uid),
        box_name: peer.box_name.as_deref(),
        flags: 0,
        rules: 0,
        system: false,
    };
    let (flags, _) = policy.classify(&actor);
    Identity {
        version: VERSION,
        pid: peer.pid,
        uid: peer.uid,
        gid: peer.gid,
        sid: peer.sid(),
        image: peer.image.clone(),
        box_name: peer.box_name.clone(),
        flags,
    }
}

fn serve(stream: UnixStream, conn: u64, weak: &Weak<Shared>) {
    let Some(shared) = weak.upgrade() else { return };
    let peer = match identity::peer(&stream) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(conn, "connection refused: cannot identify the peer: {e}");
            return;
        }
    };
    let who = format!("pid {} ({})", peer.pid, peer.image);
    if let Some(b) = &peer.box_name {
        // A boxed process is served only by its box: never by the host registry.
        if let Err(e) = shared.boxes.ensure_mounted(b) {
            tracing::warn!(conn, peer = %who, box_name = %b, "connection refused: box {b} cannot be served: {e}");
            drop(shared);
            refuse(stream, &format!("box {b} cannot be served: {e}"));
            return;
        }
        shared.boxes.note_entered(b);
    }
    let identity = identity_of(&peer, &shared);
    if let Err(e) = shared.home.ensure_user_hive(&identity.sid) {
        tracing::warn!(conn, peer = %who, "the user's hive could not be mounted: {e}");
    }
    let Ok(writer) = stream.try_clone() else { return };
    let out = Arc::new(Out::new(writer, conn));
    let privileged = peer.uid == 0 || peer.uid == shared.uid;
    // The connection waits for its changes' syncs itself, once per batch of requests.
    let syncs = Arc::new(DeferredSyncs::new());
    let caller = peer.caller().with_deferred_syncs(syncs.clone());
    let mut session =
        Session::new(shared.home.registry.clone(), Some(shared.home.clone()), caller, identity, privileged);
    {
        let out = Arc::downgrade(&out);
        session.set_notifier(Arc::new(move |w, status| {
            if let Some(out) = out.upgrade() {
                out.push(Push::Notify { watch: w.0, status });
            }
        }));
    }
    let host: Arc<dyn Host> = shared.clone();
    session.set_host(host);
    session.set_boxes(shared.boxes.clone());
    let decisions = shared.decisions.clone();
    let subscribers = shared.subscribers.clone();
    let net = Net {
        service: shared.net.clone(),
        asker: Asker {
            privileged,
            pid: peer.pid,
            pidfd: peer.pidfd.as_ref().and_then(|p| p.try_clone().ok()),
            box_name: peer.box_name.clone(),
        },
    };
    // Only the connection's own thread holds the daemon from here on through `weak`.
    drop(shared);
    tracing::debug!(conn, peer = %who, "connected");
    let end = run_connection(stream, conn, &mut session, &syncs, &out, &decisions, &subscribers, &net);
    decisions.unsubscribe(conn);
    subscribers.list.lock().retain(|s| s.conn != conn);
    let (handles, txns) = (session.open_handles(), 0);
    drop(session);
    match end {
        Ok(()) => tracing::debug!(conn, peer = %who, handles, txns, "disconnected"),
        Err(e) => tracing::warn!(conn, peer = %who, "connection closed: {e}"),
    }
}

/// Refuses a connection: answers its hello (if one comes within 5 seconds) with `Error`
/// (`STATUS_ACCESS_DENIED` and `message`), then closes it.
fn refuse(mut stream: UnixStream, message: &str) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut input = FrameBuffer::new();
    loop {
        let spare = input.spare(READ_CHUNK);
        let n = match stream.read(spare) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                input.filled(READ_CHUNK, 0);
                continue;
            }
            Err(_) => return,
        };
        input.filled(READ_CHUNK, n);
        match input.next_frame() {
            Ok(Some(body)) => {
                if let Ok((id, Request::Hello { .. })) = Request::decode(body) {
                    let mut out = Vec::new();
                    let reply = Reply::Error { status: NtStatus::STATUS_ACCESS_DENIED, message: message.to_owned() };
                    reply.encode(id, &mut out);
                    let _ = stream.write_all(&out);
                }
                return;
            }
            Ok(None) if n == 0 => return,
            Ok(None) => {}
            Err(_) => return,
        }
    }
}

/// The replies of one batch, sent together once the changes they acknowledge are durable.
struct Batch {
    replies: Vec<(u32, Reply)>,
    /// Syncs to wait for, with the index of the reply each one holds back.
    syncs: Vec<(usize, hivebox_core::Pending)>,
    bytes: Vec<u8>,
}

impl Batch {
    fn push(&mut self, id: u32, reply: Reply, syncs: &DeferredSyncs) {
        let index = self.replies.len();
        self.syncs.extend(syncs.take().into_iter().map(|p| (index, p)));
        self.replies.push((id, reply));
    }

    /// Waits for the batch's syncs (one `fdatasync` usually covers them all), turns the replies
    /// of changes that could not be made durable into errors, and sends everything.
    fn send(&mut self, out: &Out) -> io::Result<()> {
        for (index, p) in self.syncs.drain(..) {
            if let Err(e) = p.wait() {
                self.replies[index].1 = Reply::Error { status: e.status(), message: e.to_string() };
            }
        }
        self.bytes.clear();
        for (id, reply) in self.replies.drain(..) {
            reply.encode(id, &mut self.bytes);
        }
        if self.bytes.is_empty() {
            return Ok(());
        }
        out.write(&self.bytes)
    }
}

/// A connection's access to network decisions.
struct Net {
    service: Arc<NetDecisions>,
    asker: Asker,
}

#[allow(clippy::too_many_arguments)]
fn run_connection(
    mut stream: UnixStream,
    conn: u64,
    session: &mut Session,
    syncs: &DeferredSyncs,
    out: &Arc<Out>,
    decisions: &Arc<DecisionHub>,
    subscribers: &Arc<Subscribers>,
    net: &Net,
) -> std::result::Result<(), String> {
    let mut input = FrameBuffer::new();
    let mut batch = Batch { replies: Vec::new(), syncs: Vec::new(), bytes: Vec::with_capacity(READ_CHUNK) };
    let mut greeted = false;
    let write_failed = |e: io::Error| format!("write failed: {e}");
    loop {
        let spare = input.spare(READ_CHUNK);
        let n = match stream.read(spare) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                input.filled(READ_CHUNK, 0);
                continue;
            }
            Err(e) => return Err(format!("read failed: {e}")),
        };
        input.filled(READ_CHUNK, n);
        if n == 0 {
            return match input.partial() {
                0 => Ok(()),
                p => Err(format!("the client went away inside a message ({p} bytes of it received)")),
            };
        }
        loop {
            let body = match input.next_frame() {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    let _ = batch.send(out);
                    return Err(format!("bad frame: {e}"));
                }
            };
            let (id, request) = match Request::decode(body) {
                Ok(r) => r,
                Err(e) => {
                    // Tell the client why before closing, when the id is readable (id 0 would
                    // read as a push).
                    let id = body.get(..4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                    if id != 0 {
                        let reply = Reply::Error { status: NtStatus::STATUS_INVALID_PARAMETER, message: e.to_string() };
                        batch.push(id, reply, syncs);
                    }
                    let _ = batch.send(out);
                    return Err(format!("bad request: {e}"));
                }
            };
            if !greeted {
                let Request::Hello { .. } = request else {
                    return Err("the first request was not a hello".into());
                };
                let reply = session.call(request);
                let ok = matches!(reply, Reply::Hello(_));
                batch.push(id, reply, syncs);
                if !ok {
                    let _ = batch.send(out);
                    return Err("the client speaks another protocol version".into());
                }
                greeted = true;
                continue;
            }
            let reply = match request {
                Request::SubscribeEvents { box_name, verdict } => {
                    subscribers.list.lock().push(Subscriber { conn, box_name, verdict, out: out.clone() });
                    Reply::Done
                }
                Request::SubscribeDecisions => {
                    // The reply goes out before the pending decisions pushed on subscribing.
                    batch.push(id, Reply::Done, syncs);
                    batch.send(out).map_err(write_failed)?;
                    decisions.subscribe(conn, out.clone());
                    continue;
                }
                Request::NetDecide { box_name, pid, protocol, address, port } => {
                    let q = Question { box_name: &box_name, pid, protocol: &protocol, address: &address, port };
                    net.service.decide(&net.asker, &q)
                }
                Request::Decide { id: d, verdict, remember } => match decisions.answer(d, verdict, remember) {
                    Ok(()) => Reply::Done,
                    Err(status) => {
                        Reply::Error { status, message: format!("decision {d} is not pending (answered or timed out)") }
                    }
                },
                other => session.call(other),
            };
            batch.push(id, reply, syncs);
        }
        batch.send(out).map_err(write_failed)?;
    }
}

/// Runs the daemon in the foreground until `SIGTERM` or `SIGINT`; `SIGHUP` reloads the
/// policy.
pub fn run_foreground(opts: &DaemonOptions) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let daemon = Daemon::start(opts)?;
    for sig in signals.forever() {
        match sig {
            SIGHUP => {
                tracing::info!("SIGHUP: reloading the policy");
                let _ = daemon.reload();
            }
            _ => {
                tracing::info!(signal = sig, "stopping");
                break;
            }
        }
    }
    daemon.stop()
}
