//! A log writer that never makes a request wait for the terminal or the pipe behind stdout: lines
//! are appended to a shared buffer and a thread of their own writes them out, many lines per
//! write. Nothing is dropped: when the buffer holds more than [`BACKLOG_BYTES`] (the output is
//! stuck), a caller waits until the thread has taken it, as it would on a blocking write.

use std::{
    io::{self, Write},
    sync::Arc,
    thread::JoinHandle,
};

use parking_lot::{Condvar, Mutex};
use tracing_subscriber::fmt::MakeWriter;

/// Bytes of lines waiting to be written beyond which a caller waits.
pub const BACKLOG_BYTES: usize = 4 << 20;

#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Signalled when lines arrive or the writer is closed.
    filled: Condvar,
    /// Signalled when the writing thread took the pending lines.
    taken: Condvar,
}

/// Hands lines to the writing thread; the `MakeWriter` of the log layer.
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Writes out what is pending and stops the writing thread when dropped.
pub struct LogWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// A writer whose lines go to `out`, written by a thread named `log-writer`.
    pub fn spawn(out: impl Write + Send + 'static) -> io::Result<(Self, LogWriterGuard)> {
        let shared = Arc::new(Shared::default());
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new().name("log-writer".into()).spawn(move || write_out(&shared, out))?
        };
        Ok((Self { shared: shared.clone() }, LogWriterGuard { shared, thread: Some(thread) }))
    }

    fn push(&self, line: &[u8]) {
        let mut pending = self.shared.pending.lock();
        while pending.lines.len() >= BACKLOG_BYTES && !pending.closed {
            self.shared.taken.wait(&mut pending);
        }
        let was_empty = pending.lines.is_empty();
        pending.lines.extend_from_slice(line);
        drop(pending);
        if was_empty {
            self.shared.filled.notify_one();
        }
    }
}

/// The writing thread: takes everything pending at once and writes it in one go.
fn write_out(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        {
            let mut pending = shared.pending.lock();
            while pending.lines.is_empty() && !pending.closed {
                shared.filled.wait(&mut pending);
            }
            if pending.lines.is_empty() {
                return;
            }
            std::mem::swap(&mut pending.lines, &mut batch);
        }
        shared.taken.notify_all();
        // A log line that cannot be written has nowhere else to go.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if batch.capacity() > BACKLOG_BYTES {
            batch.shrink_to(BACKLOG_BYTES / 4);
        }
    }
}

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        self.shared.pending.lock().closed = true;
        self.shared.filled.notify_all();
        self.shared.taken.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One formatted line (the log layer writes each event with one `write_all`).
pub struct Line<'a>(&'a LogWriter);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line(self)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_from_every_thread_is_written_whole_and_in_each_threads_order() {
        let sink = Sink::default();
        let (writer, guard) = LogWriter::spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        writer
                            .make_writer()
                            .write_all(format!("{t} {i} {}\n", "x".repeat(i % 200)).as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let text = String::from_utf8(sink.0.lock().clone()).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut parts = line.split(' ');
            let t: usize = parts.next().unwrap().parse().unwrap();
            let i: usize = parts.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t} out of order");
            assert_eq!(parts.next().unwrap().len(), i % 200);
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
    }
}
