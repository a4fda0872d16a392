//! `rediss://`: a gateway talks to a TLS-only redis-server (certificate
//! made with openssl for the test, trusted through `SSL_CERT_FILE`).

mod support;

use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, Gateway, GatewayOpts, WsClient};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_works_over_rediss() {
    let dir = std::env::temp_dir().join(format!("lobbyd-tls-{}", support::unique()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, ca_key, cert, key) = (
        dir.join("ca.pem"),
        dir.join("ca.key"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let (csr, ext) = (dir.join("leaf.csr"), dir.join("leaf.ext"));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: Vec<std::ffi::OsString>| {
        Command::new("openssl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is needed for this test")
            .success()
    };
    let os = |v: &[&dyn AsRef<std::ffi::OsStr>]| {
        v.iter().map(|a| a.as_ref().to_owned()).collect::<Vec<_>>()
    };
    // A CA, and a server certificate for 127.0.0.1 signed by it.
    let ok = openssl(os(&[
        &"req",
        &"-x509",
        &"-newkey",
        &"rsa:2048",
        &"-nodes",
        &"-days",
        &"1",
        &"-subj",
        &"/CN=lobbyd-test-ca",
        &"-keyout",
        &ca_key,
        &"-out",
        &ca,
    ])) && openssl(os(&[
        &"req",
        &"-newkey",
        &"rsa:2048",
        &"-nodes",
        &"-subj",
        &"/CN=127.0.0.1",
        &"-keyout",
        &key,
        &"-out",
        &csr,
    ])) && openssl(os(&[
        &"x509",
        &"-req",
        &"-in",
        &csr,
        &"-CA",
        &ca,
        &"-CAkey",
        &ca_key,
        &"-CAcreateserial",
        &"-days",
        &"1",
        &"-extfile",
        &ext,
        &"-out",
        &cert,
    ]));
    assert!(ok, "openssl could not make a certificate");
    let port = free_port();
    let _redis = Killed(
        Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&ca)
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "TLS redis did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut opts = GatewayOpts::redis(format!("rediss://127.0.0.1:{port}"));
    opts.env
        .push(("SSL_CERT_FILE".into(), ca.display().to_string()));
    let node = Gateway::start(opts).await;
    let mut a = WsClient::connect(&node.ws_url()).await;
    let mut b = WsClient::connect(&node.ws_url()).await;
    a.login("ann").await;
    b.login("bob").await;
    a.request(
        "connect_lobby",
        json!({"lobby": {"id": "tls-room", "visibility": true}}),
    )
    .await
    .ok();
    b.request("connect_lobby", json!({"lobby": {"id": "tls-room"}}))
        .await
        .ok();
    a.request(
        "send_message",
        json!({"lobby": {"id": "tls-room"}, "content": "over tls"}),
    )
    .await
    .ok();
    let ev = b.expect_event("send_message").await;
    assert_eq!(ev["message"]["data"]["content"], json!("over tls"));
}
