//! The HTTPS server: accepts TLS connections on a loopback listener and serves each with
//! hyper (HTTP/1.1, upgrades enabled for attach), until told to stop.

use std::sync::Arc;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;

/// Serves the API on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    cluster: Arc<Cluster>,
    stop: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        if cluster.faults.unreachable() {
            // Closed unanswered: the client sees a reset or an early EOF.
            drop(tcp);
            continue;
        }
        let acceptor = acceptor.clone();
        let cluster = cluster.clone();
        tokio::spawn(async move {
            let mut outages = cluster.faults.outages();
            // A client that fails the handshake (wrong CA, plain HTTP) just goes away.
            let Ok(tls) = acceptor.accept(tcp).await else { return };
            let service = {
                let cluster = cluster.clone();
                service_fn(move |req| {
                    let cluster = cluster.clone();
                    async move { Ok::<_, std::convert::Infallible>(crate::api::handle(cluster, req).await) }
                })
            };
            let connection =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), service).with_upgrades();
            // An outage cuts the connection, and whatever it streams, without a goodbye.
            tokio::select! {
                _ = connection => {}
                _ = outages.changed() => {}
            }
        });
    }
}
