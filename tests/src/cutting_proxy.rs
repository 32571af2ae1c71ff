//! A TCP forwarder that fails after a given number of bytes: what a client sees when its
//! server is killed, or hangs, in the middle of a transfer, at a point the test chooses by
//! bytes rather than by time. The server behind it (moto, which keeps its buckets in memory)
//! lives on, so the test can still look at what the client left there.
//!
//! Once the bytes sent towards the server pass the limit, the forwarder trips:
//! * [`CuttingProxy::cut`]: every open connection is shut down in both directions and every
//!   later one is closed as soon as it is accepted (a server gone);
//! * [`CuttingProxy::stall`]: the connection whose bytes passed the limit stops forwarding
//!   (holding what it has) until the forwarder is dropped, and everything else goes on (one
//!   request hanging), so a client blocked on it can be interrupted and still reach the
//!   server to clean up.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// A forwarder from a port of 127.0.0.1 to a server; stopped when dropped.
pub struct CuttingProxy {
    port: u16,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Cut,
    Stall,
}

struct State {
    upstream: SocketAddr,
    mode: Mode,
    limit: u64,
    sent: AtomicU64,
    stopping: AtomicBool,
    /// Whether it tripped, and the open connections (both ends). One mutex for both, so a
    /// connection accepted while a cut happens is either shut down by it or refused.
    conns: Mutex<(bool, Vec<TcpStream>)>,
    /// Set when the forwarder is dropped: a stalled connection then ends.
    released: (Mutex<bool>, Condvar),
}

impl State {
    fn trip(&self) {
        let mut conns = self.conns.lock().unwrap();
        conns.0 = true;
        if self.mode == Mode::Cut {
            self.shut_all(&mut conns.1);
        }
    }

    fn shut_all(&self, conns: &mut Vec<TcpStream>) {
        for stream in conns.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn tripped(&self) -> bool {
        self.conns.lock().unwrap().0
    }

    fn wait_for_release(&self) {
        let (released, cvar) = &self.released;
        let mut released = released.lock().unwrap();
        while !*released {
            released = cvar.wait(released).unwrap();
        }
    }
}

impl CuttingProxy {
    /// Cuts every connection once more than `limit` bytes were sent to `upstream`.
    pub fn cut(upstream: SocketAddr, limit: u64) -> CuttingProxy {
        CuttingProxy::start(upstream, limit, Mode::Cut)
    }

    /// Stalls the connection whose bytes to `upstream` pass `limit`.
    pub fn stall(upstream: SocketAddr, limit: u64) -> CuttingProxy {
        CuttingProxy::start(upstream, limit, Mode::Stall)
    }

    fn start(upstream: SocketAddr, limit: u64, mode: Mode) -> CuttingProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a port for the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream,
            mode,
            limit,
            sent: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            conns: Mutex::new((false, Vec::new())),
            released: (Mutex::new(false), Condvar::new()),
        });
        let accept_state = Arc::clone(&state);
        let accept = std::thread::spawn(move || accept_loop(&listener, &accept_state));
        CuttingProxy {
            port,
            state,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Whether the limit was passed.
    pub fn tripped(&self) -> bool {
        self.state.tripped()
    }

    /// Bytes forwarded towards the server.
    pub fn bytes_sent(&self) -> u64 {
        self.state.sent.load(Ordering::SeqCst)
    }
}

fn accept_loop(listener: &TcpListener, state: &Arc<State>) {
    for client in listener.incoming() {
        if state.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if state.mode == Mode::Cut && state.tripped() {
            // Gone: the client sees its connection closed at once.
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = TcpStream::connect(state.upstream) else {
            continue;
        };
        {
            let mut conns = state.conns.lock().unwrap();
            if state.mode == Mode::Cut && conns.0 {
                let _ = client.shutdown(Shutdown::Both);
                continue;
            }
            for stream in [&client, &server] {
                conns.1.push(stream.try_clone().expect("clone a socket"));
            }
        }
        let (c2, s2) = (
            client.try_clone().expect("clone a socket"),
            server.try_clone().expect("clone a socket"),
        );
        let up = Arc::clone(state);
        std::thread::spawn(move || pump(client, server, Some(&up)));
        std::thread::spawn(move || pump(s2, c2, None));
    }
}

/// Copies `from` to `to` until either ends. Towards the server (`upstream` given) it counts
/// the bytes, and the piece that passes the limit trips the forwarder instead of going on.
fn pump(mut from: TcpStream, mut to: TcpStream, upstream: Option<&State>) {
    let mut buf = vec![0; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(state) = upstream {
            // Once tripped, nothing more is counted: a stall hangs one request, not the
            // requests that come after it.
            if !state.tripped() {
                let sent = state.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if sent > state.limit {
                    state.trip();
                    if state.mode == Mode::Stall {
                        state.wait_for_release();
                    }
                    break;
                }
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::SeqCst);
        {
            let (released, cvar) = &self.state.released;
            *released.lock().unwrap() = true;
            cvar.notify_all();
        }
        self.state.shut_all(&mut self.state.conns.lock().unwrap().1);
        // Wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}
