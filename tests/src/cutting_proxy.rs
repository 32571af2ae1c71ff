//! A TCP forwarder that goes dead after a given number of bytes: what a client sees when its
//! server is killed or the network goes down in the middle of a transfer, at a point the test
//! chooses by bytes rather than by time. The server behind it (moto, which keeps its buckets
//! in memory) lives on, so the test can still look at what the client left there.
//!
//! Once the bytes sent towards the server pass the limit, every open connection is shut down
//! in both directions and every later one is closed as soon as it is accepted.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A forwarder from a port of 127.0.0.1 to `upstream`, cut after `cut_after` bytes sent
/// upstream; stopped when dropped.
pub struct CuttingProxy {
    port: u16,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

struct State {
    upstream: SocketAddr,
    cut_after: u64,
    sent: AtomicU64,
    stopping: AtomicBool,
    /// `true` once cut; the open connections (both ends) until then. One mutex for both, so a
    /// connection accepted while the cut happens is either shut down by it or refused.
    conns: Mutex<(bool, Vec<TcpStream>)>,
}

impl State {
    fn cut(&self) {
        let mut conns = self.conns.lock().unwrap();
        conns.0 = true;
        for stream in conns.1.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn is_cut(&self) -> bool {
        self.conns.lock().unwrap().0
    }
}

impl CuttingProxy {
    pub fn start(upstream: SocketAddr, cut_after: u64) -> CuttingProxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a port for the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State {
            upstream,
            cut_after,
            sent: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            conns: Mutex::new((false, Vec::new())),
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

    /// Whether the limit was reached and the connections cut.
    pub fn was_cut(&self) -> bool {
        self.state.is_cut()
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
        let Ok(server) = TcpStream::connect(state.upstream) else {
            continue;
        };
        {
            let mut conns = state.conns.lock().unwrap();
            if conns.0 {
                // Dead: the client sees its connection closed at once.
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

/// Copies `from` to `to` until either ends; counts the bytes towards the server (`upstream`
/// given) and cuts everything when they pass the limit, before forwarding the piece that does.
fn pump(mut from: TcpStream, mut to: TcpStream, upstream: Option<&State>) {
    let mut buf = vec![0; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(state) = upstream {
            let sent = state.sent.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if sent > state.cut_after {
                state.cut();
                break;
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
        self.state.cut();
        // Wakes the accept loop, which then sees `stopping`.
        let _ = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}
