//! A host application's use of the token API: ask the daemon for a connection's access
//! token (never refresh it yourself), call QuickBooks with it, and report how the sync went.
//!
//! ```sh
//! export QBO_TOKEN_API=http://127.0.0.1:9188      # [api] listen
//! export QBO_API_KEY=qbok_...                     # qbo-console apikey create my-app --realm R
//! cargo run --example token_client -- 9130347596723456 [sandbox|production]
//! ```

use serde_json::{json, Value};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("token_client: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let base = std::env::var("QBO_TOKEN_API").unwrap_or_else(|_| "http://127.0.0.1:9188".into());
    let key = std::env::var("QBO_API_KEY")
        .map_err(|_| "set QBO_API_KEY to a key from `qbo-console apikey create`".to_string())?;
    let mut args = std::env::args().skip(1);
    let realm = args
        .next()
        .ok_or("usage: token_client REALM_ID [sandbox|production]")?;
    let env = args.next().map(|e| format!("?env={e}")).unwrap_or_default();
    let http = reqwest::Client::new();

    // 1. The token: fetch it before each batch of calls; the daemon refreshes it when
    //    needed, once, however many of your workers ask.
    let resp = http
        .get(format!("{base}/v1/connections/{realm}/access-token{env}"))
        .bearer_auth(&key)
        .send()
        .await
        .map_err(|e| format!("the token API did not answer: {e}"))?;
    let status = resp.status();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    match status.as_u16() {
        200 => {}
        409 => {
            return Err(format!(
                "the connection is {} ({}): ask the customer to reconnect",
                body["status"], body["reason"]
            ))
        }
        _ => return Err(format!("{status}: {}", body["message"])),
    }
    let token = body["access_token"].as_str().ok_or("no access_token")?;
    println!(
        "access token for realm {} ({}), {} s left",
        body["realm_id"], body["environment"], body["expires_in"]
    );

    // 2. Your sync calls QuickBooks here with `Authorization: Bearer {token}`, and counts
    //    the records it wrote.
    let _ = token;
    let records = 0;

    // 3. Report the outcome: it becomes the console's "last sync" for this connection.
    let report = json!({
        "status": "ok",
        "detail": "example client run",
        "records": records,
    });
    let resp = http
        .post(format!("{base}/v1/connections/{realm}/sync{env}"))
        .bearer_auth(&key)
        .json(&report)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("sync report refused: {}", resp.status()));
    }
    println!("sync reported");
    Ok(())
}
