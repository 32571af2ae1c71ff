//! bzip2 decompressed on every core, where the file allows it: TarInternal (like pbzip2)
//! writes one bzip2 stream per 900 kB of tar, and streams are independent. The file is cut at
//! stream starts (`BZh1`..`BZh9` and the first block's magic, byte-aligned) into pieces of a
//! few streams, which threads decode while the results are handed on in order.
//!
//! A stream start is recognised by 10 bytes, which compressed data may hold by chance: a piece
//! cut there does not decode. Then, and for a file with few long streams (what `bzip2` writes),
//! the rest of the file is decoded by one ordinary multi-stream decoder from the start of the
//! first piece not yet handed on, so the output is always what `bzip2 -d` gives, or its error.

use std::collections::BTreeMap;
use std::io::{self, Cursor, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

/// How the file is cut.
#[derive(Clone, Copy)]
pub struct Limits {
    /// Compressed bytes a piece holds at least (streams are not split).
    pub piece: usize,
    /// Compressed bytes read ahead without finding a stream start before giving up on pieces.
    pub no_start: usize,
    /// Bytes read from the file at once.
    pub read: usize,
}

pub const LIMITS: Limits = Limits {
    piece: 1 << 20,
    no_start: 32 << 20,
    read: 4 << 20,
};

fn is_start(b: &[u8]) -> bool {
    b.len() >= 10
        && &b[..3] == b"BZh"
        && (b'1'..=b'9').contains(&b[3])
        && b[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
}

/// The first stream start in `buf` at or after `from`.
fn next_start(buf: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while at + 10 <= buf.len() {
        let rel = buf[at..].iter().position(|&b| b == b'B')?;
        at += rel;
        if is_start(&buf[at..]) {
            return Some(at);
        }
        at += 1;
    }
    None
}

fn decode(piece: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(piece.len() * 5);
    bzip2::read::MultiBzDecoder::new(piece).read_to_end(&mut out)?;
    Ok(out)
}

type Done = (u64, io::Result<Vec<u8>>);

/// Decodes `file` into `tx` in order; `sequential` is given the reader of the rest when the
/// file does not cut into pieces. Returns when the file is done or the receiver is gone.
pub fn produce<F: Read + Send + 'static>(
    mut file: F,
    tx: &SyncSender<io::Result<Vec<u8>>>,
    threads: usize,
    limits: Limits,
    sequential: impl FnOnce(Box<dyn Read + Send>),
) {
    let (jobs, queue) = sync_channel::<(u64, Arc<Vec<u8>>)>(threads * 2);
    let queue = Arc::new(Mutex::new(queue));
    let (report, results) = channel::<Done>();
    let mut workers = Vec::new();
    for _ in 0..threads {
        let (queue, report) = (Arc::clone(&queue), report.clone());
        let worker = std::thread::Builder::new()
            .name("aa-restore-bzip2".into())
            .spawn(move || loop {
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok((seq, piece)) = job else { return };
                if report.send((seq, decode(&piece))).is_err() {
                    return;
                }
            });
        if let Ok(worker) = worker {
            workers.push(worker);
        }
    }
    drop(report);
    let mut run = Pieces {
        jobs: Some(jobs),
        results,
        pending: BTreeMap::new(),
        sent: BTreeMap::new(),
        next_seq: 0,
        emit_seq: 0,
        limits,
    };
    let rest = if workers.is_empty() {
        Rest::Sequential(Vec::new())
    } else {
        run.cut(&mut file, tx)
    };
    run.jobs = None;
    for worker in workers {
        let _ = worker.join();
    }
    if let Rest::Sequential(head) = rest {
        sequential(Box::new(Cursor::new(head).chain(file)));
    }
}

enum Rest {
    /// Everything was handed on (or the receiver is gone).
    Done,
    /// The rest of the file, after these bytes, needs one sequential decoder.
    Sequential(Vec<u8>),
}

struct Pieces {
    jobs: Option<SyncSender<(u64, Arc<Vec<u8>>)>>,
    results: Receiver<Done>,
    /// Compressed pieces in flight, kept until handed on (a failed one restarts from there).
    pending: BTreeMap<u64, Arc<Vec<u8>>>,
    /// Decoded pieces waiting for their turn.
    sent: BTreeMap<u64, io::Result<Vec<u8>>>,
    next_seq: u64,
    emit_seq: u64,
    limits: Limits,
}

enum Step {
    Go,
    Stop,
    Fallback,
}

impl Pieces {
    fn cut(&mut self, file: &mut impl Read, tx: &SyncSender<io::Result<Vec<u8>>>) -> Rest {
        let Limits {
            piece: min_piece,
            no_start,
            read,
        } = self.limits;
        let mut buf: Vec<u8> = Vec::new();
        let mut eof = false;
        loop {
            // Read until a piece can be cut, or the end.
            let cut = loop {
                if buf.len() >= 10 && !is_start(&buf) {
                    return self.fallback(buf);
                }
                if let Some(end) =
                    next_start(&buf, min_piece.min(buf.len())).filter(|_| buf.len() > min_piece)
                {
                    break Some(end);
                }
                if eof {
                    break None;
                }
                if buf.len() > no_start {
                    return self.fallback(buf);
                }
                let old = buf.len();
                buf.resize(old + read, 0);
                match read_some(file, &mut buf[old..]) {
                    Ok(0) => {
                        buf.truncate(old);
                        eof = true;
                    }
                    Ok(n) => buf.truncate(old + n),
                    Err(e) => {
                        buf.truncate(old);
                        let _ = self.drain_to(tx);
                        let _ = tx.send(Err(e));
                        return Rest::Done;
                    }
                }
            };
            let piece = match cut {
                Some(end) => {
                    let rest = buf.split_off(end);
                    std::mem::replace(&mut buf, rest)
                }
                None if buf.is_empty() => break,
                None => std::mem::take(&mut buf),
            };
            match self.dispatch(piece, tx) {
                Step::Go => {}
                Step::Stop => return Rest::Done,
                Step::Fallback => return self.fallback(buf),
            }
            if cut.is_none() {
                break;
            }
        }
        match self.drain_to(tx) {
            Step::Fallback => self.fallback(Vec::new()),
            _ => Rest::Done,
        }
    }

    fn dispatch(&mut self, piece: Vec<u8>, tx: &SyncSender<io::Result<Vec<u8>>>) -> Step {
        let piece = Arc::new(piece);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.insert(seq, Arc::clone(&piece));
        if let Some(jobs) = &self.jobs {
            if jobs.send((seq, piece)).is_err() {
                return Step::Fallback;
            }
        }
        // Hand on what is ready; wait while many are in flight.
        while let Ok((seq, result)) = self.results.try_recv() {
            self.sent.insert(seq, result);
        }
        while self.pending.len() > 8 {
            match self.results.recv() {
                Ok((seq, result)) => {
                    self.sent.insert(seq, result);
                }
                Err(_) => return Step::Fallback,
            }
            match self.emit(tx) {
                Step::Go => {}
                other => return other,
            }
        }
        self.emit(tx)
    }

    /// Hands on the decoded pieces that are next in order.
    fn emit(&mut self, tx: &SyncSender<io::Result<Vec<u8>>>) -> Step {
        while let Some(result) = self.sent.remove(&self.emit_seq) {
            match result {
                Ok(data) => {
                    self.pending.remove(&self.emit_seq);
                    self.emit_seq += 1;
                    if !data.is_empty() && tx.send(Ok(data)).is_err() {
                        return Step::Stop;
                    }
                }
                Err(_) => {
                    self.sent
                        .insert(self.emit_seq, Err(io::Error::other("failed")));
                    return Step::Fallback;
                }
            }
        }
        Step::Go
    }

    fn drain_to(&mut self, tx: &SyncSender<io::Result<Vec<u8>>>) -> Step {
        while !self.pending.is_empty() {
            match self.emit(tx) {
                Step::Go => {}
                other => return other,
            }
            if self.pending.is_empty() {
                break;
            }
            match self.results.recv() {
                Ok((seq, result)) => {
                    self.sent.insert(seq, result);
                }
                Err(_) => return Step::Fallback,
            }
        }
        Step::Go
    }

    /// The compressed bytes from the first piece not handed on, then `buf`: the start of what
    /// a sequential decoder must do.
    fn fallback(&mut self, buf: Vec<u8>) -> Rest {
        let mut head = Vec::new();
        for piece in std::mem::take(&mut self.pending).into_values() {
            head.extend_from_slice(&piece);
        }
        head.extend_from_slice(&buf);
        Rest::Sequential(head)
    }
}

fn read_some(file: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match file.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn compress(data: &[u8]) -> Vec<u8> {
        let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    /// Noise that compresses a little, so streams are of some size.
    fn data(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 3 == 0 {
                    b'a'
                } else {
                    x as u8
                }
            })
            .collect()
    }

    /// Runs `produce` on `file` with small limits; the output, or the error.
    fn run(file: Vec<u8>, limits: Limits) -> (io::Result<Vec<u8>>, bool) {
        let (tx, rx) = sync_channel(4);
        let fell_back = Arc::new(Mutex::new(false));
        let flag = Arc::clone(&fell_back);
        let thread = std::thread::spawn(move || {
            produce(Cursor::new(file), &tx, 2, limits, |rest| {
                *flag.lock().unwrap() = true;
                let mut out = Vec::new();
                let result = bzip2::read::MultiBzDecoder::new(rest).read_to_end(&mut out);
                let _ = tx.send(Ok(out));
                if let Err(e) = result {
                    let _ = tx.send(Err(e));
                }
            })
        });
        let mut out = Vec::new();
        let mut result = Ok(());
        for chunk in rx {
            match chunk {
                Ok(data) => out.extend(data),
                Err(e) => result = Err(e),
            }
        }
        thread.join().unwrap();
        let fell_back = *fell_back.lock().unwrap();
        (result.map(|()| out), fell_back)
    }

    const SMALL: Limits = Limits {
        piece: 3000,
        no_start: 40_000,
        read: 1000,
    };

    #[test]
    fn many_streams_decode_in_pieces_and_in_order() {
        let parts: Vec<Vec<u8>> = (0..40).map(|i| data(9000 + i * 100, i as u64)).collect();
        let file: Vec<u8> = parts.iter().flat_map(|p| compress(p)).collect();
        let (out, fell_back) = run(file, SMALL);
        assert_eq!(out.unwrap(), parts.concat());
        assert!(!fell_back);
    }

    #[test]
    fn one_long_stream_and_a_bad_piece_fall_back_to_one_decoder() {
        let long = data(200_000, 7);
        let (out, fell_back) = run(compress(&long), SMALL);
        assert_eq!(out.unwrap(), long);
        assert!(fell_back);

        // A damaged stream in the middle: the error of the sequential decoder.
        let parts: Vec<Vec<u8>> = (0..20).map(|i| compress(&data(9000, i))).collect();
        let mut file = parts.concat();
        let middle = parts[..10].iter().map(Vec::len).sum::<usize>() + 200;
        file[middle] ^= 0xff;
        let (out, fell_back) = run(file, SMALL);
        assert!(out.is_err());
        assert!(fell_back);
    }

    #[test]
    fn stream_starts_are_found() {
        let mut data = b"xxBZh9\x31\x41\x59\x26\x53\x59yyBZh0\x31\x41\x59\x26\x53\x59".to_vec();
        data.extend_from_slice(b"BZh1\x31\x41\x59\x26\x53\x59");
        assert_eq!(next_start(&data, 0), Some(2));
        assert_eq!(next_start(&data, 3), Some(data.len() - 10));
        assert_eq!(next_start(b"BZh9", 0), None);
    }
}
