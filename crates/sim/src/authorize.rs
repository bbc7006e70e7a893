//! The authorize endpoint: the consent page a browser sees, its decision
//! form, and scripted approval through `x-sim-decision` headers.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;

use super::http::{self, escape_html, html};
use super::options::SimEnvironment;
use super::scopes::ScopeSet;
use super::Shared;

/// A request that passed the checks which decide whether we may redirect at all.
struct AuthRequest {
    client_id: String,
    environment: SimEnvironment,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
}

enum Decision {
    Approve,
    Deny,
}

fn bad_request(message: &str) -> Response {
    html(StatusCode::BAD_REQUEST, http::error_page(message))
}

/// Client and redirect URI problems are shown to the user (never redirect to
/// an unverified URI); protocol problems go back to the app by redirect.
fn validate(
    shared: &Shared,
    p: &HashMap<String, String>,
) -> Result<(AuthRequest, ScopeSet), Box<Response>> {
    let client_id = p.get("client_id").map(String::as_str).unwrap_or("");
    let redirect_uri = p.get("redirect_uri").map(String::as_str).unwrap_or("");
    let environment = {
        let st = shared.lock();
        let Some(client) = st.clients.get(client_id) else {
            return Err(Box::new(bad_request(&format!(
                "The app's client_id {client_id:?} is not known."
            ))));
        };
        if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
            return Err(Box::new(bad_request(&format!(
                "The redirect_uri {redirect_uri:?} is not registered for this app."
            ))));
        }
        client.environment
    };
    let state = p.get("state").cloned();
    let back = |error: &str| -> Box<Response> {
        let mut params = vec![("error", error)];
        if let Some(s) = &state {
            params.push(("state", s));
        }
        Box::new(http::found(&http::with_query(redirect_uri, &params)))
    };
    if p.get("response_type").map(String::as_str) != Some("code") {
        return Err(back("unsupported_response_type"));
    }
    let scope = p.get("scope").cloned().unwrap_or_default();
    let scopes = ScopeSet::parse(&scope).map_err(|_| back("invalid_scope"))?;
    Ok((
        AuthRequest {
            client_id: client_id.to_string(),
            environment,
            redirect_uri: redirect_uri.to_string(),
            scope,
            state,
        },
        scopes,
    ))
}

/// `GET /connect/oauth2`
pub(crate) async fn page(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let params = match http::parse_form(uri.query().unwrap_or("").as_bytes()) {
        Ok(p) => p,
        Err(e) => return bad_request(&e.0),
    };
    let (req, scopes) = match validate(&shared, &params) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let realm = http::header(&headers, "x-sim-realm-id").filter(|r| !r.is_empty());
    match http::header(&headers, "x-sim-decision").map(str::to_ascii_lowercase) {
        Some(d) if d == "approve" => decide(&shared, &req, scopes, Decision::Approve, realm),
        Some(d) if d == "deny" => decide(&shared, &req, scopes, Decision::Deny, None),
        Some(other) => bad_request(&format!(
            "x-sim-decision must be approve or deny, not {other:?}."
        )),
        None => {
            let companies = companies_of(&shared, req.environment);
            html(StatusCode::OK, consent_page(&req, scopes, &companies))
        }
    }
}

/// The companies of `environment`, by name: Intuit's consent page offers the signed-in
/// user's companies to choose from, so a person reconnecting one need not know its realm id.
fn companies_of(shared: &Shared, environment: SimEnvironment) -> Vec<(String, String)> {
    let st = shared.lock();
    let mut v: Vec<(String, String)> = st
        .realms
        .iter()
        .filter(|(_, r)| r.environment == environment)
        .map(|(id, r)| (r.company_name.clone(), id.clone()))
        .collect();
    v.sort();
    v
}

/// `POST /connect/oauth2/decision`: the consent form. Everything is checked
/// again; the hidden fields are not trusted.
pub(crate) async fn decision(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let params = match http::parse_form(&body) {
        Ok(p) => p,
        Err(e) => return bad_request(&e.0),
    };
    let (req, scopes) = match validate(&shared, &params) {
        Ok(v) => v,
        Err(resp) => return *resp,
    };
    let realm = params
        .get("realm_id")
        .map(|r| r.trim())
        .filter(|r| !r.is_empty());
    match params.get("decision").map(String::as_str) {
        Some("approve") => decide(&shared, &req, scopes, Decision::Approve, realm),
        Some("deny") => decide(&shared, &req, scopes, Decision::Deny, None),
        _ => bad_request("Choose Connect or Cancel."),
    }
}

fn decide(
    shared: &Shared,
    req: &AuthRequest,
    scopes: ScopeSet,
    decision: Decision,
    realm_hint: Option<&str>,
) -> Response {
    let mut params: Vec<(&str, &str)> = Vec::with_capacity(3);
    let now = shared.clock.now();
    let (code, realm) = {
        let mut st = shared.lock();
        if let Decision::Deny = decision {
            st.stats.authorizations_denied += 1;
            drop(st);
            params.push(("error", "access_denied"));
            if let Some(s) = &req.state {
                params.push(("state", s));
            }
            return http::found(&http::with_query(&req.redirect_uri, &params));
        }
        // realmId only exists for grants that reach a company.
        let realm = if scopes.reaches_company() {
            match st.ensure_realm(realm_hint, req.environment, None) {
                Ok(r) => Some(r),
                Err(e) => return bad_request(&e.0),
            }
        } else {
            None
        };
        let code = st.issue_code(
            &req.client_id,
            &req.redirect_uri,
            scopes,
            realm.clone(),
            now,
        );
        st.stats.authorizations_approved += 1;
        (code, realm)
    };
    params.push(("code", &code));
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    if let Some(r) = &realm {
        params.push(("realmId", r));
    }
    http::found(&http::with_query(&req.redirect_uri, &params))
}

fn consent_page(req: &AuthRequest, scopes: ScopeSet, companies: &[(String, String)]) -> String {
    let hidden = |name: &str, value: &str| {
        format!(
            "<input type=\"hidden\" name=\"{name}\" value=\"{}\">",
            escape_html(value)
        )
    };
    let scope_items: String = scopes
        .names()
        .iter()
        .map(|s| format!("<li>{}</li>", escape_html(s)))
        .collect();
    let options: String = companies
        .iter()
        .map(|(name, id)| {
            format!(
                "<option value=\"{}\">{}</option>",
                escape_html(id),
                escape_html(name)
            )
        })
        .collect();
    let realm_field = if scopes.reaches_company() {
        format!(
            "<p><label>Reconnect an existing company (realm id, optional): \
             <input name=\"realm_id\" list=\"companies\" inputmode=\"numeric\" pattern=\"[0-9]{{1,19}}\"></label>\
             <datalist id=\"companies\">{options}</datalist></p>"
        )
    } else {
        String::new()
    };
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Intuit (qbo-sim): connect an app</title></head>\
         <body><h1>Connect {client} to QuickBooks ({env})</h1>\
         <p>The app asks for:</p><ul>{scope_items}</ul>\
         <form method=\"post\" action=\"/connect/oauth2/decision\">\
         {h_client}{h_redirect}{h_scope}{h_type}{h_state}{realm_field}\
         <button type=\"submit\" name=\"decision\" value=\"approve\">Connect</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Cancel</button>\
         </form></body></html>\n",
        client = escape_html(&req.client_id),
        env = req.environment,
        h_client = hidden("client_id", &req.client_id),
        h_redirect = hidden("redirect_uri", &req.redirect_uri),
        h_scope = hidden("scope", &req.scope),
        h_type = hidden("response_type", "code"),
        h_state = req
            .state
            .as_deref()
            .map(|s| hidden("state", s))
            .unwrap_or_default(),
    )
}
