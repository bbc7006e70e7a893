//! Injected failures: what each fault kind looks like on the wire.

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, FixedOffset, Utc};

use super::conn::ConnHandle;
use super::http;
use super::options::FaultKind;
use super::Shared;

/// Seconds announced in `Retry-After` by the rate-limit fault. Short, so
/// tests and benchmarks that honour it do not stall.
const RETRY_AFTER_SECS: &str = "1";

/// Which endpoint a fault replaces the answer of; garbage differs per endpoint.
pub(crate) use super::options::Surface;

/// Answers a faulted request about `realm` (when known) without processing it.
/// `LostResponse` is not handled here: the caller processes the request first and
/// then calls `lose`.
pub(crate) async fn answer(
    shared: &Shared,
    conn: &ConnHandle,
    kind: FaultKind,
    surface: Surface,
    realm: Option<&str>,
) -> Response {
    tracing::debug!(fault = kind.name(), ?surface, "injecting fault");
    match kind {
        FaultKind::ServiceUnavailable => service_unavailable(),
        FaultKind::Timeout => {
            let hold = shared.lock().fault_config(realm).timeout_hold;
            shared.sleep(hold).await;
            lose(conn)
        }
        FaultKind::RateLimited => {
            let mut resp = throttled(shared.clock.now());
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
            resp
        }
        FaultKind::Garbage => garbage(surface),
        FaultKind::LostResponse => lose(conn),
    }
}

/// Closes the connection without an answer; the returned response is never sent.
pub(crate) fn lose(conn: &ConnHandle) -> Response {
    conn.abort();
    http::with_type(StatusCode::GATEWAY_TIMEOUT, "text/plain", "lost")
}

fn service_unavailable() -> Response {
    http::html(
        StatusCode::SERVICE_UNAVAILABLE,
        "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n\
         <body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n\
         </body>\r\n</html>\r\n"
            .to_string(),
    )
}

/// Truncated JSON under a JSON content type: parses as nothing.
fn garbage(surface: Surface) -> Response {
    let body = match surface {
        Surface::Token => "{\"token_type\":\"bearer\",\"expires_in\":36",
        Surface::Revoke => "<!-- upstream reset -->{\"status\":",
        Surface::CompanyInfo => "{\"CompanyInfo\":{\"CompanyName\":\"",
    };
    http::with_type(StatusCode::OK, "application/json", body)
}

/// QBO's time format: milliseconds and Pacific offset, e.g. `2024-01-09T06:56:50.312-08:00`.
pub(crate) fn qbo_time(now: DateTime<Utc>) -> String {
    match FixedOffset::west_opt(8 * 3600) {
        Some(tz) => now
            .with_timezone(&tz)
            .format("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string(),
        None => now.to_rfc3339(),
    }
}

/// Intuit's throttle answer: XML even when JSON was asked for (INTUIT.md).
pub(crate) fn throttled(now: DateTime<Utc>) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n\
         <IntuitResponse xmlns=\"http://schema.intuit.com/finance/v3\" time=\"{}\">\
         <Fault type=\"SERVICE\"><Error code=\"3001\">\
         <Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>\
         <Detail>The request limit was reached.</Detail>\
         </Error></Fault></IntuitResponse>\n",
        qbo_time(now)
    );
    http::with_type(StatusCode::TOO_MANY_REQUESTS, "application/xml", body)
}
