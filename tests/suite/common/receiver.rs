//! A local alert receiver: a small axum server that keeps every JSON body POSTed to it,
//! and can be told to fail the next requests (HTTP 500) to exercise retries.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Inner {
    accepted: Mutex<Vec<serde_json::Value>>,
    refused: AtomicUsize,
    fail_next: AtomicUsize,
}

pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
    _task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let inner = Arc::new(Inner::default());
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver {
            url,
            inner,
            _task: task,
        }
    }

    /// The bodies accepted (answered 200), in order.
    pub fn accepted(&self) -> Vec<serde_json::Value> {
        self.inner.accepted.lock().unwrap().clone()
    }

    /// How many requests were answered 500.
    pub fn refused(&self) -> usize {
        self.inner.refused.load(Ordering::SeqCst)
    }

    /// Answers the next `n` requests with HTTP 500.
    pub fn fail_next(&self, n: usize) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// The `[[alerts.webhook]]` section naming this receiver.
    pub fn webhook_config(&self) -> String {
        format!(
            "[[alerts.webhook]]\nname = \"test-receiver\"\nurl = \"{}\"\n",
            self.url
        )
    }
}

async fn hook(State(inner): State<Arc<Inner>>, body: String) -> StatusCode {
    let failing = inner
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        inner.refused.fetch_add(1, Ordering::SeqCst);
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    inner.accepted.lock().unwrap().push(v);
    StatusCode::OK
}
