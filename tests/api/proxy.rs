//! A TCP proxy between the application and PostgreSQL that can lose the traffic (stop forwarding
//! without closing anything, as when packets are dropped), cut every connection, and forward
//! again: a PostgreSQL outage for one test, without touching the shared server.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// The proxy; it stops with the test.
pub struct PgProxy {
    addr: SocketAddr,
    upstream: String,
    forwarding: watch::Sender<bool>,
    pumps: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl PgProxy {
    /// A proxy to `upstream` (`host:port`) on a free loopback port, forwarding.
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (forwarding, _) = watch::channel(true);
        let pumps: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (target, gate, registry) = (upstream.to_owned(), forwarding.clone(), pumps.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(&target).await else { continue };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                let mut pumps = registry.lock().unwrap();
                pumps.retain(|p| !p.is_finished());
                pumps.push(tokio::spawn(pump(ri, wo, gate.subscribe())));
                pumps.push(tokio::spawn(pump(ro, wi, gate.subscribe())));
            }
        });
        Self { addr, upstream: upstream.to_owned(), forwarding, pumps, accept }
    }

    /// `url` (a PostgreSQL URL naming the upstream) through the proxy.
    pub fn route(&self, url: &str) -> String {
        url.replacen(&self.upstream, &self.addr.to_string(), 1)
    }

    /// `url` (routed through the proxy) to the upstream directly.
    pub fn unroute(&self, url: &str) -> String {
        url.replacen(&self.addr.to_string(), &self.upstream, 1)
    }

    /// Stop forwarding in both directions; connections stay open and what is sent waits.
    pub fn lose_traffic(&self) {
        self.forwarding.send_replace(false);
    }

    /// Close every connection (both sides see it end).
    pub fn cut(&self) {
        for pump in self.pumps.lock().unwrap().drain(..) {
            pump.abort();
        }
    }

    /// Forward again.
    pub fn restore(&self) {
        self.forwarding.send_replace(true);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Copy `from` to `to` while forwarding is on; hold (read nothing more) while it is off.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut gate: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if gate.wait_for(|on| *on).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if gate.wait_for(|on| *on).await.is_err() {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// `host:port` of the PostgreSQL server the tests use.
pub fn upstream_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}
