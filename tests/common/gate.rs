//! A TCP gate between mxgate and the homeserver: open, it forwards every byte; closed,
//! it cuts the connections through it and turns new ones away, so mxgate sees the
//! homeserver go down and come back on the same address.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Gate {
    pub url: url::Url,
    open: Arc<watch::Sender<bool>>,
}

impl Gate {
    /// A gate to `target`, closed or open as `open` says.
    pub async fn start(target: &url::Url, open: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target: SocketAddr = format!("{}:{}", target.host_str().unwrap(), target.port().unwrap()).parse().unwrap();
        let (state, _) = watch::channel(open);
        let state = Arc::new(state);
        let gate = state.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut open = gate.subscribe();
                if !*open.borrow() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = open.wait_for(|open| !*open) => {}
                    }
                });
            }
        });
        Self { url: format!("http://{addr}").parse().unwrap(), open: state }
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    pub fn close(&self) {
        self.open.send_replace(false);
    }
}
