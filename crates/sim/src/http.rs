//! Small HTTP helpers shared by the endpoints: form parsing, Basic auth,
//! canned responses.

use crate::SimError;
use std::collections::HashMap;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;

/// Parses `application/x-www-form-urlencoded` (also used for query strings).
/// A parameter given twice is an error, as RFC 6749 §3.1 requires.
pub(crate) fn parse_form(raw: &[u8]) -> Result<HashMap<String, String>, SimError> {
    let text = std::str::from_utf8(raw).map_err(|_| "body is not UTF-8".to_string())?;
    let mut out = HashMap::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k)?;
        let v = decode_component(v)?;
        if out.contains_key(&k) {
            return Err(SimError::from(format!(
                "parameter {k:?} is given more than once"
            )));
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn decode_component(s: &str) -> Result<String, SimError> {
    let plus = s.replace('+', " ");
    urlencoding::decode(&plus)
        .map(|c| c.into_owned())
        .map_err(|_| SimError(format!("{s:?} is not valid percent-encoding")))
}

pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// True when the request's media type (ignoring parameters) is `expected`.
pub(crate) fn has_content_type(headers: &HeaderMap, expected: &str) -> bool {
    header(headers, CONTENT_TYPE.as_str())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

/// `Authorization: Basic base64(client_id:client_secret)`.
pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = header(headers, "authorization")?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `Authorization: Bearer <token>`.
pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = header(headers, "authorization")?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_type(status, "application/json", bytes),
        Err(e) => with_type(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            format!("serialising the answer failed: {e}"),
        ),
    }
}

/// An OAuth error body; `no-store` like every token endpoint answer.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: Option<&str>) -> Response {
    #[derive(Serialize)]
    struct Body<'a> {
        error: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_description: Option<&'a str>,
    }
    no_store(json(
        status,
        &Body {
            error,
            error_description: description,
        },
    ))
}

pub(crate) fn no_store(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

pub(crate) fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Body>,
) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body.into(),
    )
        .into_response()
}

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    with_type(status, "text/html; charset=utf-8", body)
}

/// A `302 Found`, which is what Intuit's authorize endpoint answers.
pub(crate) fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(LOCATION, v)]).into_response(),
        Err(_) => html(
            StatusCode::BAD_REQUEST,
            error_page("The redirect URI cannot be used in a Location header."),
        ),
    }
}

/// Appends query parameters to a URL that may or may not have a query already.
pub(crate) fn with_query(base: &str, params: &[(&str, &str)]) -> String {
    let mut url = base.to_string();
    let mut sep = if base.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&urlencoding::encode(v));
        sep = '&';
    }
    url
}

pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(crate) fn error_page(message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Intuit (qbo-sim): error</title></head>\
         <body><h1>We can't connect this app</h1><p class=\"error\">{}</p></body></html>\n",
        escape_html(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_parsing() {
        let f = parse_form(b"a=1&b=x+y%2Fz&c").unwrap();
        assert_eq!(f["a"], "1");
        assert_eq!(f["b"], "x y/z");
        assert_eq!(f["c"], "");
        assert!(parse_form(b"a=1&a=2").is_err());
    }

    #[test]
    fn credentials() {
        let mut h = HeaderMap::new();
        h.insert(
            "authorization",
            HeaderValue::from_static("Basic aWQ6c2U6Y3JldA=="),
        );
        assert_eq!(basic_credentials(&h), Some(("id".into(), "se:cret".into())));
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        assert_eq!(basic_credentials(&h), None);
    }

    #[test]
    fn query_building_and_escaping() {
        assert_eq!(
            with_query("https://x/cb", &[("code", "a b"), ("state", "s&t")]),
            "https://x/cb?code=a%20b&state=s%26t"
        );
        assert_eq!(
            escape_html("<a href='x'>&</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
