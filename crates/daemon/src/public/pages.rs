//! The pages a customer's browser sees: small, plain HTML that says what happened and what
//! to do, and never carries a code, token, state or internal id. Every response of the
//! public listener gets the headers in `harden`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use qbo_service::consent::Answer;

/// No scripts, styles, frames, forms or anything fetched: the pages are text.
pub const CSP: &str =
    "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            c if qbo_core::text::is_unsafe(c) => String::new(),
            c => c.to_string(),
        })
        .collect()
}

pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{t}</title></head>\
         <body><h1>{t}</h1><p>{b}</p></body></html>\n",
        t = escape(title),
        b = escape(body)
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

/// The cookie that binds a state to the browser that opened the link.
pub const BINDING_COOKIE: &str = "qbo_link";

pub fn answer(a: Answer, secure_cookie: bool, state_lifetime_secs: u64) -> Response {
    match a {
        Answer::ToIntuit { location, binding } => {
            let mut r = StatusCode::FOUND.into_response();
            let cookie = format!(
                "{BINDING_COOKIE}={binding}; Path=/; Max-Age={state_lifetime_secs}; HttpOnly; SameSite=Lax{}",
                if secure_cookie { "; Secure" } else { "" }
            );
            // Both values are ours (Intuit's endpoint from the configuration, base64url
            // secrets): a failure here would be a bug, answered as one.
            match (
                HeaderValue::from_str(&location),
                HeaderValue::from_str(&cookie),
            ) {
                (Ok(l), Ok(c)) => {
                    r.headers_mut().insert(header::LOCATION, l);
                    r.headers_mut().insert(header::SET_COOKIE, c);
                    r
                }
                _ => internal_error(),
            }
        }
        Answer::Connected { company } => page(
            StatusCode::OK,
            "Connected",
            &match company {
                Some(name) => format!(
                    "{name} is connected to QuickBooks again. You can close this page."
                ),
                None => "Your company is connected to QuickBooks again. You can close this page."
                    .into(),
            },
        ),
        Answer::ConsentDeclined => page(
            StatusCode::OK,
            "Not connected",
            "You chose not to connect at Intuit, so nothing changed. If that was a mistake, open the link you were sent again.",
        ),
        Answer::UnknownLink => page(
            StatusCode::NOT_FOUND,
            "Link not recognised",
            "This link is not valid. Check that you opened the whole link, or ask your contact for a new one.",
        ),
        Answer::LinkClosed => page(
            StatusCode::GONE,
            "Link expired or already used",
            "This link has expired, was cancelled, or was already used. Ask your contact for a new one if you still need to connect.",
        ),
        Answer::BadState => page(
            StatusCode::BAD_REQUEST,
            "Sign-in could not be checked",
            "This answer from Intuit could not be matched to a link opened in this browser, or it took too long. Nothing changed. Open the link you were sent again, in this browser.",
        ),
        // 409, yet harmless: a refresh or a double click lands here, and is told it is done.
        Answer::Duplicate => page(
            StatusCode::CONFLICT,
            "Already received",
            "Your connection was already received and is being completed or is done. You can close this page.",
        ),
        Answer::RealmMismatch => page(
            StatusCode::CONFLICT,
            "A different company was chosen",
            "The QuickBooks company you chose at Intuit is not the one this link is for, so nothing was changed and that company was not connected. Open the link again and choose the right company, or ask your contact.",
        ),
        Answer::CodeRefused => page(
            StatusCode::BAD_REQUEST,
            "Connection not completed",
            "The answer from Intuit could not be used: it was incomplete, too old or already used. Nothing changed; open the link you were sent again.",
        ),
        Answer::ExchangeFailed => page(
            StatusCode::BAD_GATEWAY,
            "Connection not completed",
            "Intuit did not complete the connection. Nothing changed; please open the link you were sent again in a few minutes.",
        ),
        Answer::Disconnected => page(
            StatusCode::OK,
            "Disconnected",
            "The app is disconnected from your QuickBooks company. To connect again, ask your contact for a link.",
        ),
    }
}

pub fn internal_error() -> Response {
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "Something went wrong on our side. Nothing was changed; please try the link again later.",
    )
}

pub fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is nothing here. Open the link you were sent.",
    )
}

/// The headers every public response carries.
pub fn harden(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The callback's address holds the authorization code: no page may send it onwards.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_company_name_is_shown_as_text_never_as_markup() {
        let r = answer(
            Answer::Connected {
                company: Some("<script>x</script>\u{1b}[2J Ltd".into()),
            },
            false,
            60,
        );
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("&lt;script&gt;x&lt;/script&gt;[2J Ltd"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
    }
}
