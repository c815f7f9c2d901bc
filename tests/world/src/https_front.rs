//! An HTTPS front for moto: TLS with the world's certificate (127.0.0.1, signed by the
//! world's CA) ends here and the bytes go on to moto's plain HTTP port unchanged, so S3 can
//! be reached over `https://` as real S3 is.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Accepts TLS on `listener` and relays each connection to `127.0.0.1:backend` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    config: Arc<rustls::ServerConfig>,
    backend: u16,
    stop: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(config);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((tcp, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // A client that fails the handshake or goes away has nothing to relay.
            let Ok(mut tls) = acceptor.accept(tcp).await else { return };
            let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await else { return };
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
        });
    }
}
