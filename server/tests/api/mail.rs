//! Outgoing mail: with `PORTCULLIS_SMTP_URL` set, the outbox is delivered through SMTP (here a tiny
//! SMTP server in the test) and each message is marked sent.

use crate::applications::Api;
use crate::helpers::{Backend, spawn_app_with};
use identity::Role;
use reqwest::Method;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

crate::on_both_databases!(the_outbox_is_delivered_through_smtp_when_configured);

/// Accepts SMTP sessions and sends each received message's DATA on `tx`.
async fn fake_smtp(listener: TcpListener, tx: mpsc::UnboundedSender<String>) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let _ = write.write_all(b"220 fake ESMTP\r\n").await;
            let mut data: Option<String> = None;
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(body) = data.as_mut() {
                    if line == "." {
                        let _ = tx.send(std::mem::take(body));
                        data = None;
                        let _ = write.write_all(b"250 OK queued\r\n").await;
                    } else {
                        body.push_str(&line);
                        body.push('\n');
                    }
                    continue;
                }
                let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                let reply: &[u8] = match verb.as_str() {
                    "EHLO" | "HELO" => b"250-fake\r\n250 8BITMIME\r\n",
                    "DATA" => {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    }
                    "QUIT" => {
                        let _ = write.write_all(b"221 bye\r\n").await;
                        return;
                    }
                    _ => b"250 OK\r\n",
                };
                let _ = write.write_all(reply).await;
            }
        });
    }
}

async fn the_outbox_is_delivered_through_smtp_when_configured(backend: Backend) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(fake_smtp(listener, tx));
    let app = spawn_app_with(backend, |c| {
        c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    })
    .await;
    let api = Api::new(&app, Role::Operator).await;
    let (status, _) = api
        .send(
            Method::POST,
            "/api/v1/users",
            Some(json!({"email": "mailed@example.com"})),
        )
        .await;
    assert_eq!(status, 201);
    let received = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
        .await
        .expect("a message within 20 s")
        .expect("message");
    assert!(received.contains("mailed@example.com"), "{received}");
    assert!(
        received.contains("You are invited to Default application"),
        "{received}"
    );
    assert!(
        received.contains("/u/accept-invitation?token="),
        "{received}"
    );
    // Marked sent (the mark follows the SMTP reply; wait for it).
    let mut sent = 0;
    for _ in 0..100 {
        sent = sqlx::query_scalar::<_, i64>(
            "select count(*) from outbox_message where sent_at is not null and error is null",
        )
        .fetch_one(app.identity.db().pool())
        .await
        .expect("count");
        if sent == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sent, 1);
}
