//! The command side: a connection pool, the scripts, and the one place
//! that turns Redis failures into [`EngineError`]s. Every call is bounded
//! by [`OP_TIMEOUT`] (pool wait included), so a dead or stalled Redis
//! yields `Unavailable` in about two seconds, never a hang.

use super::scripts::{expect_ok, Script, Scripts};
use crate::engine::{EngineError, EngineResult};
use deadpool_redis::redis::{self, FromRedisValue, RedisError, Value};
use deadpool_redis::{Manager, Pool, PoolError, Runtime};
use std::future::Future;
use std::time::Duration;
use tracing::Instrument;

/// Upper bound of one engine call against Redis.
pub const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a call waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(1);
/// Pool size: commands are multiplexed, so a few connections suffice.
const POOL_SIZE: usize = 16;

/// Pooled connections plus the loaded scripts.
pub struct Store {
    /// deadpool-redis: connections are checked (PING) before reuse and
    /// recreated after Redis restarts.
    pool: Pool,
    pub scripts: Scripts,
}

impl Store {
    /// A pool for `url`; connects lazily.
    pub fn new(url: &str) -> EngineResult<Self> {
        let conn_config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT));
        let manager = Manager::new_with_config(url, conn_config)
            .map_err(|e| EngineError::Unavailable(format!("bad redis url: {e}")))?;
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(OP_TIMEOUT))
            .recycle_timeout(Some(POOL_WAIT))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| EngineError::Internal(format!("redis pool: {e}")))?;
        Ok(Self {
            pool,
            scripts: Scripts::new(),
        })
    }

    /// Runs `f` on a pooled connection within [`OP_TIMEOUT`].
    async fn with_conn<T, F, Fut>(&self, f: F) -> EngineResult<T>
    where
        F: FnOnce(deadpool_redis::Connection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let work = async {
            let conn = self
                .pool
                .get()
                .await
                .map_err(|e| redis_error(pool_error(e)))?;
            f(conn).await.map_err(redis_error)
        };
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(OP_TIMEOUT, work)
            .instrument(tracing::info_span!("redis.call"))
            .await;
        crate::telemetry::metrics::metrics()
            .redis_latency
            .record(started.elapsed().as_secs_f64(), &[]);
        match result {
            Ok(r) => r,
            Err(_) => Err(EngineError::Unavailable(
                "redis did not answer in time".into(),
            )),
        }
    }

    /// One command.
    pub async fn query<T: FromRedisValue + Send>(&self, cmd: &redis::Cmd) -> EngineResult<T> {
        self.with_conn(|mut c| async move { cmd.query_async::<T>(&mut c).await })
            .await
    }

    /// Several commands in one round trip.
    pub async fn pipe<T: FromRedisValue + Send>(&self, p: &redis::Pipeline) -> EngineResult<T> {
        self.with_conn(|mut c| async move { p.query_async::<T>(&mut c).await })
            .await
    }

    /// Runs a script and returns its raw answer.
    pub async fn eval(&self, script: &Script, args: &[String]) -> EngineResult<Value> {
        self.with_conn(|mut c| async move { script.run(&mut c, args).await })
            .await
    }

    /// Runs a mutating script: the values after `'ok'`, or its refusal.
    pub async fn eval_ok(&self, script: &Script, args: &[String]) -> EngineResult<Vec<Value>> {
        let v = self.eval(script, args).await?;
        expect_ok(script, v)
    }
}

fn pool_error(e: PoolError) -> RedisError {
    match e {
        PoolError::Backend(e) => e,
        other => RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            other.to_string(),
        )),
    }
}

/// Connection trouble is `Unavailable`; anything else (a script error, a
/// type mismatch) is a bug: `Internal`.
pub fn redis_error(e: RedisError) -> EngineError {
    let transient = e.is_io_error()
        || e.is_timeout()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_cluster_error()
        || matches!(
            e.code(),
            Some(
                "LOADING"
                    | "MASTERDOWN"
                    | "READONLY"
                    | "TRYAGAIN"
                    | "CLUSTERDOWN"
                    | "BUSY"
                    | "NOREPLICAS"
                    | "OOM"
            )
        );
    if transient {
        EngineError::Unavailable(e.to_string())
    } else {
        EngineError::Internal(e.to_string())
    }
}
