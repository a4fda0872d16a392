//! Opening client WebSockets: loopback only, optional source address, small
//! buffers (the generator holds up to ~100k of them).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// A parsed `ws://127.x.y.z:port/path` target.
#[derive(Clone, Debug)]
pub struct Target {
    pub url: String,
    pub addr: SocketAddrV4,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("ws://")
            .ok_or_else(|| format!("{url}: only ws:// URLs are supported"))?;
        let hostport = rest.split('/').next().unwrap_or(rest);
        let addr: SocketAddr = hostport
            .parse()
            .map_err(|_| format!("{url}: host must be an IPv4 address with a port"))?;
        match addr {
            SocketAddr::V4(a) if a.ip().is_loopback() => Ok(Self {
                url: url.to_string(),
                addr: a,
            }),
            _ => Err(format!(
                "{url}: refusing a non-loopback target (this tool only loads 127.0.0.0/8)"
            )),
        }
    }
}

pub fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20))
}

/// Connects, optionally from a given 127.x source address, and performs the
/// WebSocket handshake.
pub async fn connect(target: &Target, src: Option<Ipv4Addr>) -> Result<Ws, String> {
    let sock = TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
    if let Some(ip) = src {
        // Without IP_BIND_ADDRESS_NO_PORT, bind(ip, 0) reserves an
        // ephemeral port number for good, and connect() from any other
        // socket on the box (the gateway's own Redis connections included)
        // skips every reserved number: 100k spread connections exhaust the
        // range for everyone. With it, the port is chosen at connect time
        // and only the 4-tuple must be unique.
        use nix::sys::socket::{setsockopt, sockopt::IpBindAddressNoPort};
        setsockopt(&sock, IpBindAddressNoPort, &true)
            .map_err(|e| format!("IP_BIND_ADDRESS_NO_PORT: {e}"))?;
        sock.bind(SocketAddr::V4(SocketAddrV4::new(ip, 0)))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = sock
        .connect(SocketAddr::V4(target.addr))
        .await
        .map_err(|e| format!("connect {}: {e}", target.addr))?;
    let _ = stream.set_nodelay(true);
    let (ws, _resp) =
        tokio_tungstenite::client_async_with_config(target.url.as_str(), stream, Some(ws_config()))
            .await
            .map_err(|e| format!("handshake {}: {e}", target.url))?;
    Ok(ws)
}

/// Source address for connection `i` of `total`: the default (127.0.0.1,
/// chosen by the kernel) below `spread_above`, else 127.0.0.2, .3, … with
/// `per_ip` connections each (one address has ~28k ephemeral ports).
pub fn source_ip(i: usize, total: usize, spread_above: usize, per_ip: usize) -> Option<Ipv4Addr> {
    if total <= spread_above {
        return None;
    }
    let n = 2 + i / per_ip.max(1);
    let n = n.min(254) as u8;
    Some(Ipv4Addr::new(127, 0, 0, n))
}
