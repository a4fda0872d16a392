//! Engines and clusters: the same test body on the memory engine (one
//! node) and on Redis (several nodes), and unique names per test.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Memory,
    Redis,
}

/// Start `n_nodes` gateways on one engine (memory is always one node).
pub async fn cluster(engine: Engine, n_nodes: usize) -> (Option<RedisServer>, Vec<Gateway>) {
    cluster_with(engine, n_nodes, GatewayOpts::default()).await
}

/// Like `cluster`, with extra options for every node (redis url and node id are filled in).
pub async fn cluster_with(
    engine: Engine,
    n_nodes: usize,
    base: GatewayOpts,
) -> (Option<RedisServer>, Vec<Gateway>) {
    match engine {
        Engine::Memory => (None, vec![Gateway::start(base).await]),
        Engine::Redis => {
            let redis = RedisServer::start().await;
            let mut nodes: Vec<Gateway> = (0..n_nodes.max(1))
                .map(|i| {
                    let mut opts = base.clone();
                    opts.redis_url = Some(redis.url());
                    opts.node_id = Some(format!("node-{i}-{}", unique()));
                    Gateway::spawn(&opts)
                })
                .collect();
            for node in &mut nodes {
                node.wait_ready().await;
            }
            (Some(redis), nodes)
        }
    }
}

/// A started cluster plus round-robin client placement, so that consecutive
/// connections of one test land on different nodes when there are several.
pub struct TestEnv {
    // Field order matters: gateways are killed before Redis.
    pub nodes: Vec<Gateway>,
    pub redis: Option<RedisServer>,
    pub engine: Engine,
    next: AtomicUsize,
}

impl TestEnv {
    pub async fn new(engine: Engine, n_nodes: usize) -> TestEnv {
        TestEnv::with_opts(engine, n_nodes, GatewayOpts::default()).await
    }

    pub async fn with_opts(engine: Engine, n_nodes: usize, opts: GatewayOpts) -> TestEnv {
        let (redis, nodes) = cluster_with(engine, n_nodes, opts).await;
        TestEnv {
            nodes,
            redis,
            engine,
            next: AtomicUsize::new(0),
        }
    }

    pub fn url(&self, node: usize) -> String {
        self.nodes[node % self.nodes.len()].ws_url()
    }

    /// A fresh, not logged-in connection on the next node in turn.
    pub async fn client(&self) -> WsClient {
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        WsClient::connect(&self.url(i)).await
    }

    pub async fn client_on(&self, node: usize) -> WsClient {
        WsClient::connect(&self.url(node)).await
    }

    /// A new user, logged in with `username`, on the next node in turn.
    pub async fn user(&self, username: &str) -> WsClient {
        let mut c = self.client().await;
        c.login(username).await;
        c
    }

    pub async fn user_on(&self, node: usize, username: &str) -> WsClient {
        let mut c = self.client_on(node).await;
        c.login(username).await;
        c
    }

    /// Another connection of the user logged in on `of` (next node in turn).
    pub async fn same_user(&self, of: &WsClient) -> WsClient {
        let mut c = self.client().await;
        c.login_token(of.token()).await;
        c
    }

    pub async fn same_user_on(&self, node: usize, of: &WsClient) -> WsClient {
        let mut c = self.client_on(node).await;
        c.login_token(of.token()).await;
        c
    }
}

pub(super) static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A short string unique within this test process (for lobby ids, tokens, names).
pub fn unique() -> String {
    let n = UNIQUE.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{}{n:x}{nanos:x}", std::process::id())
}
