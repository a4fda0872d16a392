//! Embeds a lobbyd gateway in an application's own process and adds an
//! application event, `roll_dice`, answered by the application.
//!
//! ```text
//! cargo run --example custom_event -- 127.0.0.1:8080
//! # then, logged in:  {"event":"roll_dice","data":{"sides":20},"ack":1}
//! ```

use lobbyd::config::Config;
use lobbyd::protocol::ProtocolError;
use lobbyd::Gateway;
use serde_json::json;

#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let config = Config {
        listen: addr.parse().expect("an address such as 127.0.0.1:8080"),
        ..Config::default()
    };
    let _telemetry = lobbyd::telemetry::init(config.log_format);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    let gateway = Gateway::new(config).on_event("roll_dice", |ctx, data| async move {
        let sides = match data.get("sides") {
            None => 6,
            Some(v) => v
                .as_u64()
                .filter(|n| (2..=1000).contains(n))
                .ok_or_else(|| {
                    ProtocolError::bad_request("`sides` must be an integer in 2..1000")
                })?,
        };
        let roll = rand::random_range(1..=sides);
        Ok(json!({ "user": { "id": ctx.user }, "sides": sides, "roll": roll }))
    });
    gateway
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .expect("serve");
}
