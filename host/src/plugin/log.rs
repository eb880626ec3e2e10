//! Forwards a plugin's stdout and stderr to the host's log (stderr), one line
//! at a time, each prefixed with the plugin's name.

use bytes::Bytes;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept before it is written out unfinished.
const MAX_LINE: usize = 64 * 1024;

/// A guest output stream that writes `[plugin NAME] line` to the host's stderr.
#[derive(Clone)]
pub(crate) struct PluginLog {
    prefix: Arc<str>,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl PluginLog {
    pub(crate) fn new(plugin: &str) -> Self {
        PluginLog {
            prefix: format!("[plugin {plugin}] ").into(),
            pending: Arc::default(),
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.extend_from_slice(bytes);
        while let Some(end) = pending
            .iter()
            .position(|&b| b == b'\n')
            .or((pending.len() > MAX_LINE).then_some(MAX_LINE))
        {
            let last = end.min(pending.len() - 1);
            let line: Vec<u8> = pending.drain(..=last).collect();
            self.emit(&line);
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        // The host's own stderr failing is nothing a plugin should pay for.
        let _ = writeln!(
            std::io::stderr().lock(),
            "{}{}",
            self.prefix,
            text.trim_end_matches('\n')
        );
    }

    /// Writes out an unfinished last line, if any.
    pub(crate) fn flush_pending(&self) {
        let line: Vec<u8> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !line.is_empty() {
            self.emit(&line);
        }
    }
}

impl IsTerminal for PluginLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for PluginLog {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for PluginLog {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(MAX_LINE)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for PluginLog {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for PluginLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
