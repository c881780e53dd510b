//! The monitor's life: create the container, report its pid, then one poll loop over the
//! container's output, the control socket, attached clients, exec'd processes and SIGCHLD,
//! until the container has exited and everything it said is in the log and with its clients.
//! Single-threaded by design: the runtime forks from here.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use berth_runtime::{CreateOptions, Created, ExecOptions, Runtime, Spawned};
use rustix::event::{PollFd, PollFlags};
use rustix::process::WaitOptions;

use crate::logfile::{self, Stream};
use crate::proto::{self, Config, ExitStatus, Reply, Request};

/// How long output may keep flowing after a process has exited (background processes that
/// outlive it without a pid namespace) before we stop waiting for the end of its streams.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
/// How long a client may leave us blocked on a write before it is dropped.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Container,
    Exec(String),
}

struct Source {
    file: File,
    stream: Stream,
    owner: Owner,
}

/// Input waiting for a process to read it.
struct Sink {
    file: File,
    pending: VecDeque<u8>,
    close_when_empty: bool,
}

impl Sink {
    fn new(file: File) -> Sink {
        set_nonblocking(file.as_fd());
        Sink {
            file,
            pending: VecDeque::new(),
            close_when_empty: false,
        }
    }

    /// Writes what it can; `false` when the reader is gone.
    fn pump(&mut self) -> bool {
        while !self.pending.is_empty() {
            let (a, _) = self.pending.as_slices();
            match self.file.write(a) {
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    New,
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    Exec(String),
    Wait,
}

struct Client {
    sock: UnixStream,
    role: Role,
    rbuf: Vec<u8>,
}

struct ExecProc {
    id: String,
    pid: i32,
    stdin: Option<Sink>,
    console: Option<File>,
    exited: Option<(i32, Instant)>,
}

struct Monitor {
    cfg: Config,
    rt: Runtime,
    pid: i32,
    cgroup: berth_cgroups::CgroupPaths,
    spawned: Option<Spawned>,
    started: bool,
    listener: UnixListener,
    sigfd: OwnedFd,
    sources: Vec<Source>,
    stdin: Option<Sink>,
    console: Option<File>,
    log: Option<logfile::Writer>,
    clients: Vec<Client>,
    execs: Vec<ExecProc>,
    exited: Option<(i32, Instant)>,
    /// Until the start, the read end of a pipe whose write end only the daemon that asked
    /// for this container holds: its end means that daemon is gone (it died, and nobody
    /// will start the container or know of it). After the start the monitor is on its own.
    lifeline: Option<OwnedFd>,
    /// The lifeline ended before the start.
    abandoned: bool,
}

/// The monitor's `main`: `berth-monitor STATE_DIR/monitor.json`, or `berth-monitor
/// --standby`: started ahead of need, it waits for the config's path on its stdin (and
/// exits quietly when the daemon closes it instead). A standby monitor's stdin stays its
/// lifeline until the container is started: a daemon that dies before that takes the
/// container with it (a pipe's end, not the parent-death signal: that fires when the
/// *thread* that forked us ends, and the daemon's threads come and go).
pub fn main() -> std::process::ExitCode {
    // Executed from a sealed memfd, the process would be named after the fd ("19").
    let _ = rustix::thread::set_name(c"berth-monitor");
    let Some(mut path) = std::env::args_os().nth(1) else {
        eprintln!("usage: berth-monitor CONFIG.json (started by the berth daemon)");
        return std::process::ExitCode::from(2);
    };
    let standby = path == "--standby";
    if standby {
        match wait_for_config() {
            Some(p) => path = p,
            None => return std::process::ExitCode::SUCCESS,
        }
    }
    let cfg: Config = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|d| serde_json::from_slice(&d).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            report(
                &serde_json::json!({"error": format!("monitor config {}: {e}", Path::new(&path).display())}),
            );
            return std::process::ExitCode::from(1);
        }
    };
    match Monitor::create(cfg) {
        Ok(mut m) => {
            if !report(&serde_json::json!({"pid": m.pid})) {
                // Nobody read it: the daemon is gone before it learned of the container.
                m.abandon();
                return std::process::ExitCode::SUCCESS;
            }
            if standby {
                m.lifeline = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3).ok();
            }
            detach_stdio();
            m.run();
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            report(&serde_json::json!({"error": e}));
            std::process::ExitCode::from(1)
        }
    }
}

/// Gives back to the kernel what creating the container needed and the monitor's long quiet
/// life does not: the free heap (parsed spec, seccomp program, setup buffers), and the code
/// pages mapped in while creating it. Code is never written, so dropping our mappings of it
/// loses nothing: the few pages the wait loop runs fault back in from the page cache, and the
/// rest (the runtime library, the JSON parser, most of libc) stop counting in our RSS.
fn release_memory() {
    // Read first, so that the buffer is freed before the trim.
    let smaps = std::fs::read_to_string("/proc/self/smaps");
    // SAFETY: malloc_trim only walks glibc's own free lists; we are single-threaded.
    unsafe { libc::malloc_trim(0) };
    let Ok(smaps) = smaps else {
        return;
    };
    for (range, anonymous) in text_mappings(&smaps) {
        // A page of ours in the mapping (a text relocation, a debugger's breakpoint, a
        // uprobe) would be lost: leave such mappings alone.
        if anonymous > 0 {
            continue;
        }
        // SAFETY: the range is a read-only executable file mapping of this process (from
        // /proc/self/smaps) without a page of its own; MADV_DONTNEED only drops its page
        // table entries, and any page touched later is read again from the unchanged file.
        unsafe {
            libc::madvise(
                range.0 as *mut libc::c_void,
                range.1 - range.0,
                libc::MADV_DONTNEED,
            )
        };
    }
}

/// The private executable file mappings (`r-xp` with a path, not `[vdso]` and the like) of a
/// `/proc/PID/smaps` text, with their `Anonymous:` kB (pages the process has of its own).
fn text_mappings(smaps: &str) -> Vec<((usize, usize), u64)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            current =
                (perms == "r-xp" && !path.is_empty() && !path.starts_with('[')).then_some((a, b));
        } else if first == "Anonymous:"
            && let Some(range) = current.take()
        {
            out.push((
                range,
                f.next().and_then(|v| v.parse().ok()).unwrap_or(u64::MAX),
            ));
        }
    }
    out
}

/// A standby monitor's wait: one line on stdin, the config's path. From then on stderr is
/// the monitor's own log beside it (`monitor.log`).
fn wait_for_config() -> Option<std::ffi::OsString> {
    use std::io::BufRead;
    use std::os::unix::ffi::OsStringExt;
    let mut line = Vec::new();
    io::stdin().lock().read_until(b'\n', &mut line).ok()?;
    if line.pop() != Some(b'\n') || line.is_empty() {
        return None;
    }
    let path = std::ffi::OsString::from_vec(line);
    if let Some(dir) = Path::new(&path).parent()
        && let Ok(log) = File::create(dir.join("monitor.log"))
    {
        // SAFETY: dup2 onto our own stderr; `log` stays open until the call returns.
        unsafe { libc::dup2(log.as_raw_fd(), 2) };
    }
    Some(path)
}

/// One line of JSON on stdout, which the daemon reads to learn how the create went; `false`
/// when it cannot be written (the daemon is gone: the pipe has no reader).
fn report(v: &serde_json::Value) -> bool {
    let mut out = io::stdout().lock();
    writeln!(out, "{v}").and_then(|()| out.flush()).is_ok()
}

/// From here on the daemon may go away: stdin and stdout become /dev/null (stderr stays,
/// it is the monitor's own log file).
fn detach_stdio() {
    if let Ok(null) = File::options().read(true).write(true).open("/dev/null") {
        for fd in [0, 1] {
            // SAFETY: dup2 onto our own standard descriptors; nothing else owns them.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) {
    if let Ok(fl) = rustix::fs::fcntl_getfl(fd) {
        let _ = rustix::fs::fcntl_setfl(fd, fl | rustix::fs::OFlags::NONBLOCK);
    }
}

fn pipe() -> Result<(File, File), String> {
    let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
        .map_err(|e| format!("pipe: {e}"))?;
    Ok((File::from(r), File::from(w)))
}

fn signalfd() -> Result<OwnedFd, String> {
    // SAFETY: sigset_t is plain data initialised by sigemptyset/sigaddset; we are the only
    // thread, so blocking is process-wide; signalfd returns a new fd we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(format!("block signals: {}", io::Error::last_os_error()));
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(format!("signalfd: {}", io::Error::last_os_error()));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

impl Monitor {
    fn create(cfg: Config) -> Result<Monitor, String> {
        // Our own session: signals for the daemon's process group do not reach us.
        let _ = rustix::process::setsid();
        let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
        let sigfd = signalfd()?;
        let sock_path = cfg.state_dir.join(proto::SOCKET);
        let _ = std::fs::remove_file(&sock_path);
        // Bound by a relative name from inside the directory: a socket path must fit in 108
        // bytes, and state roots can be long.
        std::env::set_current_dir(&cfg.state_dir)
            .map_err(|e| format!("chdir {}: {e}", cfg.state_dir.display()))?;
        let listener = UnixListener::bind(proto::SOCKET)
            .map_err(|e| format!("listen on {}: {e}", sock_path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("listener: {e}"))?;
        let log = match &cfg.log.path {
            Some(p) => Some(
                logfile::Writer::open(p, &cfg.log)
                    .map_err(|e| format!("open log {}: {e}", p.display()))?,
            ),
            None => None,
        };

        let rt = Runtime::new(&cfg.runtime_root);
        let mut opts = CreateOptions {
            init: cfg.init,
            ..Default::default()
        };
        let mut sources = Vec::new();
        let mut stdin = None;
        // The container's ends of its stdio, closed here once it has them.
        let mut theirs: Vec<File> = Vec::new();
        if !cfg.tty {
            let (in_r, in_w) = if cfg.open_stdin {
                let (r, w) = pipe()?;
                (r, Some(w))
            } else {
                (
                    File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?,
                    None,
                )
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            opts.stdio = Some([in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()]);
            stdin = in_w.map(Sink::new);
            for (file, stream) in [(out_r, Stream::Stdout), (err_r, Stream::Stderr)] {
                set_nonblocking(file.as_fd());
                sources.push(Source {
                    file,
                    stream,
                    owner: Owner::Container,
                });
            }
            theirs.extend([in_r, out_w, err_w]);
        }
        let created: Created = rt
            .create(&cfg.id, &cfg.bundle, &opts)
            .map_err(|e| berth_runtime::chain(&e))?;
        drop(theirs);
        let Created {
            pid,
            mut spawned,
            cgroup,
        } = created;
        let mut console = None;
        if let Some(master) = spawned.console.take() {
            let master = File::from(master);
            if cfg.open_stdin
                && let Ok(w) = master.try_clone()
            {
                stdin = Some(Sink::new(w));
            }
            if let Ok(r) = master.try_clone() {
                set_nonblocking(r.as_fd());
                sources.push(Source {
                    file: r,
                    stream: Stream::Stdout,
                    owner: Owner::Container,
                });
            }
            console = Some(master);
        }
        Ok(Monitor {
            cfg,
            rt,
            pid,
            cgroup,
            spawned: Some(spawned),
            started: false,
            listener,
            sigfd,
            sources,
            stdin,
            console,
            log,
            clients: Vec::new(),
            execs: Vec::new(),
            exited: None,
            lifeline: None,
            abandoned: false,
        })
    }

    /// The daemon that asked for this container is gone before it was started: the
    /// container's processes, cgroups and runtime state go, and so do we. (The daemon's next
    /// start finds no monitor for it and keeps its record as it was.)
    fn abandon(&mut self) {
        eprintln!("berth-monitor: the daemon is gone before the start: removing the container");
        let _ = std::fs::remove_file(self.cfg.state_dir.join(proto::SOCKET));
        if let Err(e) = self.rt.delete(&self.cfg.id, true) {
            eprintln!(
                "berth-monitor: delete container: {}",
                berth_runtime::chain(&e)
            );
        }
    }

    /// The lifeline is readable: `false` when it has ended (the daemon is gone).
    fn read_lifeline(&mut self) -> bool {
        let Some(fd) = &self.lifeline else {
            return true;
        };
        let mut buf = [0u8; 64];
        match rustix::io::read(fd, &mut buf) {
            Ok(0) => false,
            Ok(_) | Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => true,
            Err(_) => false,
        }
    }

    fn run(&mut self) {
        loop {
            if self.abandoned {
                self.abandon();
                return;
            }
            if let Some((_, at)) = self.exited {
                let container_streams_open =
                    self.sources.iter().any(|s| s.owner == Owner::Container);
                if !container_streams_open || at.elapsed() > DRAIN_GRACE {
                    break;
                }
            }
            self.finish_execs();
            self.poll_once();
        }
        self.finish();
    }

    /// Waits for anything to happen and handles it.
    fn poll_once(&mut self) {
        enum Item {
            Listener,
            Signal,
            Source(usize),
            Client(usize),
            Stdin,
            ExecStdin(usize),
            Lifeline,
        }
        let mut items = vec![Item::Listener, Item::Signal];
        let mut fds = vec![
            PollFd::new(&self.listener, PollFlags::IN),
            PollFd::new(&self.sigfd, PollFlags::IN),
        ];
        if let Some(l) = &self.lifeline {
            items.push(Item::Lifeline);
            fds.push(PollFd::new(l, PollFlags::IN));
        }
        for (i, s) in self.sources.iter().enumerate() {
            items.push(Item::Source(i));
            fds.push(PollFd::new(&s.file, PollFlags::IN));
        }
        for (i, c) in self.clients.iter().enumerate() {
            items.push(Item::Client(i));
            fds.push(PollFd::new(&c.sock, PollFlags::IN));
        }
        if let Some(s) = &self.stdin
            && !s.pending.is_empty()
        {
            items.push(Item::Stdin);
            fds.push(PollFd::new(&s.file, PollFlags::OUT));
        }
        for (i, e) in self.execs.iter().enumerate() {
            if let Some(s) = &e.stdin
                && !s.pending.is_empty()
            {
                items.push(Item::ExecStdin(i));
                fds.push(PollFd::new(&s.file, PollFlags::OUT));
            }
        }
        let timeout = if self.exited.is_some() || self.execs.iter().any(|e| e.exited.is_some()) {
            Some(rustix::time::Timespec {
                tv_sec: 0,
                tv_nsec: 50_000_000,
            })
        } else {
            None
        };
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                eprintln!("berth-monitor: poll: {e}");
                std::thread::sleep(Duration::from_millis(10));
                return;
            }
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        // Handle from the back so removals do not shift the indexes still to handle.
        let mut dead_sources = Vec::new();
        let mut dead_clients = Vec::new();
        for (item, ready) in items.iter().zip(ready).rev() {
            if !ready {
                continue;
            }
            match item {
                Item::Listener => self.accept(),
                Item::Signal => self.reap(),
                Item::Lifeline => {
                    if !self.started && !self.read_lifeline() {
                        self.abandoned = true;
                        return;
                    }
                }
                Item::Source(i) => {
                    if !self.read_source(*i) {
                        dead_sources.push(*i);
                    }
                }
                Item::Client(i) => {
                    if !self.read_client(*i) {
                        dead_clients.push(*i);
                    }
                }
                Item::Stdin => {
                    if let Some(s) = &mut self.stdin
                        && (!s.pump() || (s.pending.is_empty() && s.close_when_empty))
                    {
                        self.stdin = None;
                    }
                }
                Item::ExecStdin(i) => {
                    if let Some(e) = self.execs.get_mut(*i)
                        && let Some(s) = &mut e.stdin
                        && (!s.pump() || (s.pending.is_empty() && s.close_when_empty))
                    {
                        e.stdin = None;
                    }
                }
            }
        }
        dead_sources.sort_unstable();
        for i in dead_sources.into_iter().rev() {
            self.sources.remove(i);
        }
        dead_clients.sort_unstable();
        for i in dead_clients.into_iter().rev() {
            self.drop_client(i);
        }
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    let _ = sock.set_nonblocking(true);
                    self.clients.push(Client {
                        sock,
                        role: Role::New,
                        rbuf: Vec::new(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("berth-monitor: accept: {e}");
                    return;
                }
            }
        }
    }

    /// Output from a process; `false` at its end.
    fn read_source(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        let n = match self.sources[i].file.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                return true;
            }
            // EIO: the pty's last slave closed.
            Err(_) => return false,
        };
        let data = &buf[..n];
        let (stream, owner) = (self.sources[i].stream, self.sources[i].owner.clone());
        let kind = match stream {
            Stream::Stdout => proto::STDOUT,
            Stream::Stderr => proto::STDERR,
        };
        match owner {
            Owner::Container => {
                if let Some(log) = &mut self.log
                    && let Err(e) = log.write(stream, data)
                {
                    eprintln!("berth-monitor: write log: {e}");
                }
                let mut dead = Vec::new();
                for (ci, c) in self.clients.iter_mut().enumerate() {
                    if let Role::Attach { stdout, stderr, .. } = c.role {
                        let wanted = if stream == Stream::Stdout {
                            stdout
                        } else {
                            stderr
                        };
                        if wanted && send_frame(&c.sock, kind, data).is_err() {
                            dead.push(ci);
                        }
                    }
                }
                for ci in dead.into_iter().rev() {
                    self.drop_client(ci);
                }
            }
            Owner::Exec(id) => {
                if let Some(ci) = self
                    .clients
                    .iter()
                    .position(|c| c.role == Role::Exec(id.clone()))
                    && send_frame(&self.clients[ci].sock, kind, data).is_err()
                {
                    self.drop_client(ci);
                }
            }
        }
        true
    }

    /// A client said something; `false` when it is gone.
    fn read_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        loop {
            match self.clients[i].sock.read(&mut buf) {
                Ok(0) => {
                    self.handle_frames(i);
                    return false;
                }
                Ok(n) => self.clients[i].rbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.handle_frames(i)
    }

    fn handle_frames(&mut self, i: usize) -> bool {
        loop {
            let rbuf = &self.clients[i].rbuf;
            if rbuf.len() < 5 {
                return true;
            }
            let head: [u8; 5] = [rbuf[0], rbuf[1], rbuf[2], rbuf[3], rbuf[4]];
            let Ok((kind, len)) = proto::parse_header(&head) else {
                return false;
            };
            if rbuf.len() < 5 + len {
                return true;
            }
            let data: Vec<u8> = self.clients[i].rbuf[5..5 + len].to_vec();
            self.clients[i].rbuf.drain(..5 + len);
            if !self.handle_frame(i, kind, data) {
                return false;
            }
        }
    }

    fn handle_frame(&mut self, i: usize, kind: u8, data: Vec<u8>) -> bool {
        let role = self.clients[i].role.clone();
        match (role, kind) {
            (Role::New, proto::CONTROL) => match serde_json::from_slice::<Request>(&data) {
                Ok(req) => self.handle_request(i, req),
                Err(e) => {
                    let _ = reply(
                        &self.clients[i].sock,
                        &Reply::Error {
                            message: format!("bad request: {e}"),
                        },
                    );
                    false
                }
            },
            (Role::Attach { stdin: true, .. }, proto::STDIN) => {
                if let Some(s) = &mut self.stdin {
                    s.pending.extend(data);
                    if !s.pump() {
                        self.stdin = None;
                    }
                }
                true
            }
            (Role::Attach { stdin: true, .. }, proto::CLOSE_STDIN) => {
                self.close_container_stdin();
                true
            }
            (Role::Exec(id), proto::STDIN) => {
                if let Some(e) = self.execs.iter_mut().find(|e| e.id == id)
                    && let Some(s) = &mut e.stdin
                {
                    s.pending.extend(data);
                    if !s.pump() {
                        e.stdin = None;
                    }
                }
                true
            }
            (Role::Exec(id), proto::CLOSE_STDIN) => {
                if let Some(e) = self.execs.iter_mut().find(|e| e.id == id)
                    && let Some(s) = &mut e.stdin
                {
                    s.close_when_empty = true;
                    if s.pending.is_empty() {
                        e.stdin = None;
                    }
                }
                true
            }
            _ => true,
        }
    }

    fn close_container_stdin(&mut self) {
        if self.cfg.tty {
            // A terminal has no end of input short of closing it: send ^D as a terminal would.
            if let Some(s) = &mut self.stdin {
                s.pending.push_back(4);
                let _ = s.pump();
            }
            return;
        }
        if let Some(s) = &mut self.stdin {
            s.close_when_empty = true;
            if s.pending.is_empty() {
                self.stdin = None;
            }
        }
    }

    fn handle_request(&mut self, i: usize, req: Request) -> bool {
        match req {
            Request::Start => {
                let r = self.start();
                let _ = reply(&self.clients[i].sock, &r);
                release_memory();
                false
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
            } => {
                self.clients[i].role = Role::Attach {
                    stdin: stdin && self.stdin.is_some(),
                    stdout,
                    stderr,
                };
                if let Some((code, _)) = self.exited {
                    let _ = reply(
                        &self.clients[i].sock,
                        &Reply::Exited(self.exit_status(code)),
                    );
                    return false;
                }
                reply(&self.clients[i].sock, &Reply::Ok).is_ok()
            }
            Request::Exec(req) => {
                let keep = match self.exec((*req).clone()) {
                    Ok(pid) => {
                        self.clients[i].role = Role::Exec(req.id);
                        reply(&self.clients[i].sock, &Reply::ExecStarted { pid }).is_ok()
                    }
                    Err(message) => {
                        let _ = reply(&self.clients[i].sock, &Reply::Error { message });
                        false
                    }
                };
                // Setting up the process paged the runtime library in again.
                release_memory();
                keep
            }
            Request::Resize {
                exec,
                height,
                width,
            } => {
                let console = match &exec {
                    None => self.console.as_ref(),
                    Some(id) => self
                        .execs
                        .iter()
                        .find(|e| &e.id == id)
                        .and_then(|e| e.console.as_ref()),
                };
                let r = match console {
                    Some(c) => match berth_runtime::set_console_size(c, height, width) {
                        Ok(()) => Reply::Ok,
                        Err(e) => Reply::Error {
                            message: berth_runtime::chain(&e),
                        },
                    },
                    None => Reply::Error {
                        message: "the process has no terminal".into(),
                    },
                };
                let _ = reply(&self.clients[i].sock, &r);
                false
            }
            Request::Wait => {
                if let Some((code, _)) = self.exited {
                    let _ = reply(
                        &self.clients[i].sock,
                        &Reply::Exited(self.exit_status(code)),
                    );
                    return false;
                }
                self.clients[i].role = Role::Wait;
                true
            }
            Request::Status => {
                let _ = reply(
                    &self.clients[i].sock,
                    &Reply::Status {
                        pid: self.pid,
                        started: self.started,
                    },
                );
                false
            }
        }
    }

    fn start(&mut self) -> Reply {
        if self.started {
            return Reply::Error {
                message: "the container is already started".into(),
            };
        }
        if let Err(e) = self.rt.start(&self.cfg.id) {
            return Reply::Error {
                message: berth_runtime::chain(&e),
            };
        }
        self.started = true;
        // Started: from here on the container outlives its daemon.
        self.lifeline = None;
        if let Some(sp) = self.spawned.take()
            && let Err(e) = sp.wait_exec()
        {
            return Reply::Error {
                message: berth_runtime::chain(&e),
            };
        }
        Reply::Started { pid: self.pid }
    }

    fn exec(&mut self, req: proto::ExecRequest) -> Result<i32, String> {
        if self.exited.is_some() {
            return Err("the container is not running".into());
        }
        let tty = req.process.terminal;
        let mut opts = ExecOptions::default();
        let mut theirs = Vec::new();
        let mut ours = Vec::new();
        let mut stdin = None;
        if !tty {
            let in_r = if req.stdin {
                let (r, w) = pipe()?;
                stdin = Some(Sink::new(w));
                r
            } else {
                File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?
            };
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            opts.create.stdio = Some([in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()]);
            ours.push((out_r, Stream::Stdout));
            ours.push((err_r, Stream::Stderr));
            theirs.extend([in_r, out_w, err_w]);
        }
        let mut spawned = self
            .rt
            .exec(&self.cfg.id, &req.process, &opts)
            .map_err(|e| berth_runtime::chain(&e))?;
        drop(theirs);
        if let Err(e) = spawned.wait_exec() {
            return Err(berth_runtime::chain(&e));
        }
        let mut console = None;
        if let Some(master) = spawned.console.take() {
            let master = File::from(master);
            if req.stdin
                && let Ok(w) = master.try_clone()
            {
                stdin = Some(Sink::new(w));
            }
            if let Ok(r) = master.try_clone() {
                ours.push((r, Stream::Stdout));
            }
            console = Some(master);
        }
        for (file, stream) in ours {
            set_nonblocking(file.as_fd());
            self.sources.push(Source {
                file,
                stream,
                owner: Owner::Exec(req.id.clone()),
            });
        }
        self.execs.push(ExecProc {
            id: req.id,
            pid: spawned.pid,
            stdin,
            console,
            exited: None,
        });
        Ok(spawned.pid)
    }

    /// SIGCHLD (or a signal to us): reap everything that exited.
    fn reap(&mut self) {
        let mut si = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
        while let Ok(n) = rustix::io::read(&self.sigfd, &mut si) {
            if n < si.len() {
                break;
            }
        }
        // `wait` is any child (wait4(-1)); `waitpid(None)` would be only our process group,
        // and a container with a terminal has a session of its own.
        while let Ok(Some((pid, st))) = rustix::process::wait(WaitOptions::NOHANG) {
            let code = match (st.exit_status(), st.terminating_signal()) {
                (Some(c), _) => c,
                (_, Some(s)) => 128 + s,
                _ => 1,
            };
            let pid = pid.as_raw_nonzero().get();
            if pid == self.pid {
                self.exited = Some((code, Instant::now()));
            } else if let Some(e) = self.execs.iter_mut().find(|e| e.pid == pid) {
                e.exited = Some((code, Instant::now()));
            }
        }
    }

    /// Tells exec clients how their process ended, once its output is all sent.
    fn finish_execs(&mut self) {
        let mut k = 0;
        while k < self.execs.len() {
            let Some((code, at)) = self.execs[k].exited else {
                k += 1;
                continue;
            };
            let id = self.execs[k].id.clone();
            let open = self
                .sources
                .iter()
                .any(|s| s.owner == Owner::Exec(id.clone()));
            if open && at.elapsed() < DRAIN_GRACE {
                k += 1;
                continue;
            }
            self.sources.retain(|s| s.owner != Owner::Exec(id.clone()));
            self.execs.remove(k);
            if let Some(ci) = self
                .clients
                .iter()
                .position(|c| c.role == Role::Exec(id.clone()))
            {
                let _ = reply(&self.clients[ci].sock, &Reply::ExecExited { code });
                self.clients.remove(ci);
            }
        }
    }

    fn drop_client(&mut self, i: usize) {
        if i >= self.clients.len() {
            return;
        }
        let c = self.clients.remove(i);
        if let Role::Attach { stdin: true, .. } = c.role {
            // Docker's rule: the last of a StdinOnce attach closes the container's stdin,
            // unless it has a tty (leaving a terminal, or detaching from it, keeps it open).
            if self.cfg.stdin_once && !self.cfg.tty {
                self.close_container_stdin();
            }
        }
    }

    fn exit_status(&self, code: i32) -> ExitStatus {
        ExitStatus {
            code,
            oom_killed: false,
            finished_at: berth_runtime::util::rfc3339(SystemTime::now()),
            started: self.started,
        }
    }

    /// The container has exited: log, runtime state, exit record, then the clients.
    fn finish(&mut self) {
        let code = self.exited.map(|(c, _)| c).unwrap_or(1);
        // Whatever is still readable goes to the log and the clients.
        for i in (0..self.sources.len()).rev() {
            while self.sources.get(i).is_some() && self.read_source_ready(i) {}
        }
        if let Some(log) = &mut self.log {
            let _ = log.flush();
        }
        // Requests that came in since the last poll (the daemon asks to wait right after the
        // start, and a short-lived container may be gone by then) are read now: a waiter is
        // told below like the others, and needs no fallback to the exit file.
        self.accept();
        let exited = self.exited.take();
        for i in (0..self.clients.len()).rev() {
            if self.clients[i].role == Role::New && !self.read_client(i) {
                self.drop_client(i);
            }
        }
        self.exited = exited;
        // From the cgroup's paths kept since the create: reading the runtime's state
        // (the whole config) again would delay the news of the exit.
        let oom_killed = berth_cgroups::from_paths(self.cgroup.clone())
            .oom_kill_count()
            .map(|n| n > 0)
            .unwrap_or(false);
        let status = ExitStatus {
            oom_killed,
            ..self.exit_status(code)
        };
        let path = self.cfg.state_dir.join(proto::EXIT_FILE);
        if let Ok(data) = serde_json::to_vec(&status)
            && let Err(e) = berth_runtime::util::write_atomic(&path, &data, 0o644)
        {
            eprintln!("berth-monitor: write {}: {e}", path.display());
        }
        let exited = Reply::Exited(status);
        for c in &self.clients {
            if matches!(c.role, Role::Wait | Role::Attach { .. }) {
                let _ = reply(&c.sock, &exited);
            }
            if let Role::Exec(_) = c.role {
                let _ = reply(&c.sock, &Reply::ExecExited { code: 137 });
            }
        }
        self.clients.clear();
        let _ = std::fs::remove_file(self.cfg.state_dir.join(proto::SOCKET));
        // The exit is recorded and told: the runtime's cleanup (cgroups, state) need not
        // delay whoever waits for it. A new start of the container clears it as well, under
        // the same lock, so the two never trip over each other.
        if let Err(e) = self.rt.delete(&self.cfg.id, true) {
            eprintln!(
                "berth-monitor: delete container: {}",
                berth_runtime::chain(&e)
            );
        }
    }

    /// Reads one more chunk from a source if it has one ready now; `false` when done.
    fn read_source_ready(&mut self, i: usize) -> bool {
        let mut fds = [PollFd::new(&self.sources[i].file, PollFlags::IN)];
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        if !matches!(rustix::event::poll(&mut fds, Some(&zero)), Ok(n) if n > 0) {
            return false;
        }
        if !self.read_source(i) {
            self.sources.remove(i);
            return false;
        }
        true
    }
}

fn reply(sock: &UnixStream, r: &Reply) -> io::Result<()> {
    let data = serde_json::to_vec(r).map_err(io::Error::other)?;
    send_frame(sock, proto::CONTROL, &data)
}

/// Writes a whole frame to a non-blocking socket, waiting (bounded) while it is full.
fn send_frame(sock: &UnixStream, kind: u8, data: &[u8]) -> io::Result<()> {
    let mut frame = Vec::with_capacity(5 + data.len());
    proto::write_frame(&mut frame, kind, data)?;
    let mut off = 0;
    let deadline = Instant::now() + CLIENT_WRITE_TIMEOUT;
    while off < frame.len() {
        match (&*sock).write(&frame[off..]) {
            Ok(n) => off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "client does not read",
                    ));
                }
                let mut fds = [PollFd::new(sock, PollFlags::OUT)];
                let ts = rustix::time::Timespec::try_from(left).unwrap_or(rustix::time::Timespec {
                    tv_sec: 1,
                    tv_nsec: 0,
                });
                let _ = rustix::event::poll(&mut fds, Some(&ts));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::text_mappings;

    #[test]
    fn text_mappings_keep_private_file_text_with_its_own_pages() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 fd:00 123 /usr/bin/berth-monitor
Rss:                 120 kB
Anonymous:             0 kB
55d0a0100000-55d0a0200000 r-xp 00100000 fd:00 123 /memfd:berth-monitor (deleted)
Rss:                 900 kB
Anonymous:             0 kB
7f0000000000-7f0000100000 r-xp 00000000 fd:00 456 /usr/lib/libpatched.so
Anonymous:             8 kB
7f0000200000-7f0000300000 r-xs 00000000 00:01 9 /memfd:jit
Anonymous:             0 kB
7f0000300000-7f0000301000 r-xp 00000000 00:00 0
Anonymous:             4 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(
            text_mappings(smaps),
            vec![
                ((0x55d0a0100000, 0x55d0a0200000), 0),
                ((0x7f0000000000, 0x7f0000100000), 8),
            ]
        );
    }
}
