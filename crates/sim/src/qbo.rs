//! The QuickBooks Online API call the console makes (companyinfo), plus the
//! OpenID userinfo endpoint the discovery document points at.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::json;

use super::conn::ConnHandle;
use super::faults::{self, qbo_time, Surface};
use super::http;
use super::options::FaultKind;
use super::state::{AccessDenied, GrantEnd};
use super::tokens;
use super::Shared;

/// `GET /v3/company/{realmId}/companyinfo/{realmId}`
pub(crate) async fn company_info(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path((realm, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let fault = shared.lock().roll_fault(Some(&realm), Surface::CompanyInfo);
    let latency = {
        let mut st = shared.lock();
        st.company_info_in_flight += 1;
        st.stats.company_info_max_in_flight = st
            .stats
            .company_info_max_in_flight
            .max(st.company_info_in_flight);
        st.company_info_latency
    };
    if !latency.is_zero() {
        shared.sleep(latency).await;
    }
    let answer = answer_company_info(&shared, &conn, fault, &realm, &id, &headers).await;
    shared.lock().company_info_in_flight -= 1;
    answer
}

async fn answer_company_info(
    shared: &Arc<Shared>,
    conn: &ConnHandle,
    fault: Option<FaultKind>,
    realm: &str,
    id: &str,
    headers: &HeaderMap,
) -> Response {
    let (realm, id) = (realm.to_string(), id.to_string());
    match fault {
        None => process(shared, &realm, &id, headers),
        Some(FaultKind::LostResponse) => {
            let _lost = process(shared, &realm, &id, headers);
            faults::lose(conn)
        }
        Some(kind) => faults::answer(shared, conn, kind, Surface::CompanyInfo, Some(&realm)).await,
    }
}

fn process(shared: &Shared, realm: &str, id: &str, headers: &HeaderMap) -> Response {
    let now = shared.clock.now();
    let key = http::bearer_token(headers).map(tokens::access_key);
    let mut st = shared.lock();
    st.stats.company_info_calls += 1;
    let checked = match &key {
        Some(k) => st.access_grant(k, now),
        None => Err(AccessDenied::Unknown),
    };
    let gid = match checked {
        Ok(g) => g,
        Err(why) => {
            st.stats.company_info_unauthorized += 1;
            return unauthorized(why, now);
        }
    };
    if st.api_disconnected.contains(realm) {
        st.stats.company_info_unauthorized += 1;
        return disconnected_api(now);
    }
    let grant_realm = st.grants.get(gid).and_then(|g| g.realm_id.clone());
    if grant_realm.as_deref() != Some(realm) {
        st.stats.company_info_forbidden += 1;
        return forbidden(now);
    }
    if !st.throttle_admit(realm, now) {
        st.stats.throttled += 1;
        return faults::throttled(now);
    }
    if id != realm {
        return not_found(id, now);
    }
    let company = st
        .realms
        .get(realm)
        .map(|r| r.company_name.clone())
        .unwrap_or_default();
    drop(st);
    http::json(StatusCode::OK, &company_body(realm, &company, now))
}

fn company_body(realm: &str, company: &str, now: DateTime<Utc>) -> serde_json::Value {
    let address = json!({
        "Id": "1",
        "Line1": "2700 Coast Ave",
        "City": "Mountain View",
        "CountrySubDivisionCode": "CA",
        "PostalCode": "94043",
        "Country": "US"
    });
    json!({
        "CompanyInfo": {
            "CompanyName": company,
            "LegalName": company,
            "CompanyAddr": address,
            "LegalAddr": address,
            "CustomerCommunicationAddr": address,
            "PrimaryPhone": {},
            "CompanyStartDate": "2024-01-01",
            "FiscalYearStartMonth": "January",
            "Country": "US",
            "Email": { "Address": "noreply@quickbooks.com" },
            "WebAddr": {},
            "SupportedLanguages": "en",
            "NameValue": [
                { "Name": "NeoEnabled", "Value": "true" },
                { "Name": "CompanyType", "Value": "Other" },
                { "Name": "OfferingSku", "Value": "QuickBooks Online Plus" }
            ],
            "domain": "QBO",
            "sparse": false,
            "Id": "1",
            "SyncToken": "4",
            "MetaData": {
                "CreateTime": "2024-01-01T00:00:00-08:00",
                "LastUpdatedTime": qbo_time(now)
            },
            "realmId": realm
        },
        "time": qbo_time(now)
    })
}

/// The QBO authentication fault, lower-case keys as Intuit sends them.
fn auth_fault(
    status: StatusCode,
    message: &str,
    detail: &str,
    code: &str,
    kind: &str,
    now: DateTime<Utc>,
) -> Response {
    http::json(
        status,
        &json!({
            "warnings": null,
            "intuitObject": null,
            "fault": {
                "error": [{
                    "message": message,
                    "detail": detail,
                    "code": code,
                    "element": null
                }],
                "type": kind
            },
            "report": null,
            "queryResponse": null,
            "batchItemResponse": [],
            "attachableResponse": [],
            "syncErrorResponse": null,
            "requestId": null,
            "time": now.timestamp_millis(),
            "status": null,
            "cdcresponse": []
        }),
    )
}

fn unauthorized(why: AccessDenied, now: DateTime<Utc>) -> Response {
    // Never echo the token: tests scan logs for token values.
    let detail = match why {
        AccessDenied::Expired => "Token expired: the access token has expired",
        AccessDenied::Unknown => "Token invalid: the access token is not recognised",
        AccessDenied::Ended(GrantEnd::Disconnected) => {
            "Token revoked: the company disconnected the app"
        }
        AccessDenied::Ended(_) => "Token revoked: the grant was revoked",
    };
    auth_fault(
        StatusCode::UNAUTHORIZED,
        "message=AuthenticationFailed; errorCode=003200; statusCode=401",
        detail,
        "3200",
        "AUTHENTICATION",
        now,
    )
}

/// 3201: the token is well formed and live at the OAuth service, but the company has
/// disconnected the app.
fn disconnected_api(now: DateTime<Utc>) -> Response {
    auth_fault(
        StatusCode::UNAUTHORIZED,
        "message=AuthenticationFailed; errorCode=003201; statusCode=401",
        "Token revoked: the company disconnected the app",
        "3201",
        "AUTHENTICATION",
        now,
    )
}

fn forbidden(now: DateTime<Utc>) -> Response {
    auth_fault(
        StatusCode::FORBIDDEN,
        "message=AuthorizationFailed; errorCode=003100; statusCode=403",
        "The access token is not authorized for this company",
        "3100",
        "AUTHORIZATION",
        now,
    )
}

fn not_found(id: &str, now: DateTime<Utc>) -> Response {
    http::json(
        StatusCode::BAD_REQUEST,
        &json!({
            "Fault": {
                "Error": [{
                    "Message": "Object Not Found",
                    "Detail": format!("Object Not Found : CompanyInfo {id} does not exist in this company"),
                    "code": "610",
                    "element": ""
                }],
                "type": "ValidationFault"
            },
            "time": qbo_time(now)
        }),
    )
}

/// `GET /v1/openid_connect/userinfo` (and the sandbox path).
pub(crate) async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let now = shared.clock.now();
    let key = http::bearer_token(&headers).map(tokens::access_key);
    let st = shared.lock();
    let grant = key
        .as_ref()
        .and_then(|k| st.access_grant(k, now).ok())
        .and_then(|g| st.grants.get(g).map(|grant| (g, grant)));
    let Some((gid, grant)) = grant else {
        return http::oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", None);
    };
    if !grant.scopes.has_openid() {
        return http::oauth_error(StatusCode::FORBIDDEN, "insufficient_scope", None);
    }
    let mut body = json!({ "sub": tokens::subject_for(&format!("{}/{gid}", grant.client_id)) });
    if grant.scopes.has_email() {
        body["email"] = json!("sim.user@example.com");
        body["emailVerified"] = json!(true);
    }
    http::json(StatusCode::OK, &body)
}
