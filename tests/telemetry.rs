//! Telemetry for real: a small OTLP/HTTP receiver decodes what two nodes
//! export (spans, the cross-node link, metrics) and checks that no token
//! is in any exported byte; `/metrics` is scraped and its counters move.

mod support;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{Gateway, GatewayOpts, RedisServer, WsClient};

#[derive(Default)]
struct Received {
    traces: Vec<Bytes>,
    metrics: Vec<Bytes>,
}

type Shared = Arc<Mutex<Received>>;

async fn traces(State(s): State<Shared>, body: Bytes) -> &'static str {
    s.lock().unwrap().traces.push(body);
    ""
}

async fn metrics(State(s): State<Shared>, body: Bytes) -> &'static str {
    s.lock().unwrap().metrics.push(body);
    ""
}

/// An OTLP/HTTP (protobuf) receiver on a free loopback port.
async fn receiver() -> (String, Shared) {
    let shared = Shared::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), shared)
}

fn spans(r: &Received) -> Vec<Span> {
    r.traces
        .iter()
        .flat_map(|b| {
            ExportTraceServiceRequest::decode(b.as_ref())
                .expect("valid OTLP traces")
                .resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        })
}

fn metric_names(r: &Received) -> Vec<String> {
    r.metrics
        .iter()
        .flat_map(|b| {
            ExportMetricsServiceRequest::decode(b.as_ref())
                .expect("valid OTLP metrics")
                .resource_metrics
        })
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .map(|m| m.name)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_link_across_nodes_and_metrics_arrive_without_tokens() {
    let (endpoint, received) = receiver().await;
    let redis = RedisServer::start().await;
    let mut nodes = Vec::new();
    for i in 0..2 {
        let mut opts =
            GatewayOpts::redis(redis.url()).node_id(format!("otel-{i}-{}", support::unique()));
        opts.env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint.clone()),
            ("OTEL_SERVICE_NAME".into(), "lobbyd-test".into()),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "100".into()),
            ("OTEL_METRIC_EXPORT_INTERVAL".into(), "300".into()),
        ];
        nodes.push(Gateway::start(opts).await);
    }
    let mut a = WsClient::connect(&nodes[0].ws_url()).await;
    let mut b = WsClient::connect(&nodes[1].ws_url()).await;
    let (_, token_a) = a.login("ann").await;
    let (_, token_b) = b.login("bob").await;
    let lobby = format!("otel-{}", support::unique());
    let made = a
        .request(
            "connect_lobby",
            json!({"lobby": {"id": lobby, "token": "lobby-secret-1234"}}),
        )
        .await
        .ok();
    let lobby_token = made["lobby"]["data"]["token"].as_str().unwrap().to_owned();
    b.request(
        "connect_lobby",
        json!({"lobby": {"id": lobby, "token": lobby_token}}),
    )
    .await
    .ok();
    a.request(
        "send_message",
        json!({"lobby": {"id": lobby}, "content": "traced"}),
    )
    .await
    .ok();
    b.expect_event("send_message").await;

    // The send_message request span on node 0 and a delivery span on node 1
    // in the same trace, the delivery a child of the request.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all = spans(&received.lock().unwrap());
        let request = all
            .iter()
            .find(|s| s.name == "request" && attr(s, "event").as_deref() == Some("send_message"));
        if let Some(req) = request {
            assert_eq!(attr(req, "lobby").as_deref(), Some(lobby.as_str()));
            assert_eq!(attr(req, "outcome").as_deref(), Some("ok"));
            assert!(attr(req, "user").is_some());
            let linked = all.iter().any(|s| {
                s.name == "deliver" && s.trace_id == req.trace_id && s.parent_span_id == req.span_id
            });
            let redis_child = all
                .iter()
                .any(|s| s.name == "redis.call" && s.trace_id == req.trace_id);
            if linked && redis_child {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no linked request/deliver spans; got {:?}",
            all.iter().map(|s| &s.name).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let names = metric_names(&received.lock().unwrap());
        let want = [
            "lobbyd.requests",
            "lobbyd.connections.open",
            "lobbyd.broadcast.deliveries",
            "lobbyd.fanout.latency",
            "lobbyd.redis.command.latency",
        ];
        if want.iter().all(|w| names.iter().any(|n| n == w)) {
            break;
        }
        assert!(Instant::now() < deadline, "missing metrics; got {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = received.lock().unwrap();
    for secret in [&token_a, &token_b, &lobby_token] {
        for body in r.traces.iter().chain(r.metrics.iter()) {
            assert!(
                !body.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a token was exported"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_counts_requests() {
    let node = Gateway::start(GatewayOpts::default()).await;
    let mut a = WsClient::connect(&node.ws_url()).await;
    a.login("ann").await;
    a.request("connect_lobby", json!({"lobby": {}})).await.ok();
    a.request("nope", json!({})).await.err("unknown_event");
    let text = support::http_get(node.port(), "/metrics").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("lobbyd_connections_open"), "{text}");
    let line = |event: &str, outcome: &str| {
        text.lines()
            .find(|l| {
                l.starts_with("lobbyd_requests_total")
                    && l.contains(&format!("event=\"{event}\""))
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(line("login", "ok"), Some(1.0), "{text}");
    assert_eq!(line("connect_lobby", "ok"), Some(1.0), "{text}");
    assert_eq!(line("other", "unknown_event"), Some(1.0), "{text}");
    a.request("connect_lobby", json!({"lobby": {}})).await.ok();
    let text = support::http_get(node.port(), "/metrics").await;
    let after = text
        .lines()
        .find(|l| {
            l.starts_with("lobbyd_requests_total")
                && l.contains("event=\"connect_lobby\"")
                && l.contains("outcome=\"ok\"")
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(after, Some(2.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_trace_and_span_ids() {
    let (endpoint, _received) = receiver().await;
    let opts = GatewayOpts {
        env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), endpoint),
            ("LOBBYD_LOG_FORMAT".into(), "json".into()),
            ("RUST_LOG".into(), "info".into()),
        ],
        ..Default::default()
    };
    let node = Gateway::start(opts).await;
    let mut a = WsClient::connect(&node.ws_url()).await;
    let (_, token) = a.login("ann").await;
    a.request("no_such_event", json!({}))
        .await
        .err("unknown_event");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = std::fs::read_to_string(node.log_path()).unwrap_or_default();
        assert!(!log.contains(&token), "a token was logged");
        let refused = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["fields"]["message"] == "request refused");
        if let Some(line) = refused {
            let trace = line["span"]["trace_id"].as_str().unwrap_or_default();
            let span = line["span"]["span_id"].as_str().unwrap_or_default();
            assert_eq!(trace.len(), 32, "{line}");
            assert_eq!(span.len(), 16, "{line}");
            assert_eq!(line["span"]["event"], "other", "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no JSON `request refused` line in:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
