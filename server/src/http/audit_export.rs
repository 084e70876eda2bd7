//! Audit export: the events of a filter as CSV or NDJSON, streamed page by page (constant memory),
//! and a detached signature a reviewer checks with openssl. The export is pinned to the chain head
//! when it began (`X-Audit-Through`), so the signature endpoint regenerates exactly the same bytes
//! from the same filter and `through`, hashes them, and signs a small manifest with the current
//! RS256 key (published in the JWKS). See docs/design/audit.md for the verification steps.

use super::AppState;
use super::api::{AuditQuery, Caller};
use super::error::{ApiError, client_error};
use app::api::audit::AuditFilter;
use app::ssr::RequestContext;
use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use identity::audit::{Export, Record};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Ndjson,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` (default) or `ndjson`.
    format: Option<Format>,
    /// Pin the export to the chain as it was at this sequence number (the `X-Audit-Through` of a
    /// previous export); default: the head now.
    through: Option<i64>,
}

const CSV_COLUMNS: [&str; 19] = [
    "seq",
    "created_at",
    "event",
    "category",
    "outcome",
    "actor_type",
    "actor_id",
    "actor_label",
    "target_type",
    "target_id",
    "application_id",
    "user_id",
    "ip",
    "user_agent",
    "request_id",
    "detail",
    "event_id",
    "prev_hash",
    "hash",
];

fn csv_field(out: &mut String, v: &str) {
    if v.contains([',', '"', '\n', '\r']) {
        out.push('"');
        for (i, part) in v.split('"').enumerate() {
            if i > 0 {
                out.push_str("\"\"");
            }
            out.push_str(part);
        }
        out.push('"');
    } else {
        out.push_str(v);
    }
}

/// One record as a line of the export; `detail` is its detail as stored (JSON text), copied as is.
/// An NDJSON line is the record as the API shows it (`GET /api/v1/audit-events`).
fn line(format: Format, r: &Record, detail: &str, out: &mut String) {
    fn o(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or_default()
    }
    match format {
        Format::Ndjson => {
            let mut json = JsonObject::new(out);
            json.num("seq", r.seq);
            json.str("event_id", &r.event_id);
            json.str("event", &r.event);
            json.str("outcome", &r.outcome);
            json.str("actor_type", &r.actor_type);
            json.opt("actor_id", &r.actor_id);
            json.opt("actor_label", &r.actor_label);
            json.opt("target_type", &r.target_type);
            json.opt("target_id", &r.target_id);
            json.opt("ip", &r.ip);
            json.opt("user_agent", &r.user_agent);
            json.opt("request_id", &r.request_id);
            json.raw("detail", detail);
            json.num("created_at", r.created_at.millis());
            json.str("prev_hash", &r.prev_hash);
            json.str("hash", &r.hash);
            json.str("category", &r.category);
            json.opt("application_id", &r.application_id);
            json.opt("user_id", &r.user_id);
            out.push_str("}\n");
        }
        Format::Csv => {
            let seq = r.seq.to_string();
            let created = r.created_at.rfc3339();
            let fields: [&str; 19] = [
                &seq,
                &created,
                &r.event,
                &r.category,
                &r.outcome,
                &r.actor_type,
                o(&r.actor_id),
                o(&r.actor_label),
                o(&r.target_type),
                o(&r.target_id),
                o(&r.application_id),
                o(&r.user_id),
                o(&r.ip),
                o(&r.user_agent),
                o(&r.request_id),
                detail,
                &r.event_id,
                &r.prev_hash,
                &r.hash,
            ];
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                csv_field(out, f);
            }
            out.push_str("\r\n");
        }
    }
}

/// Writes a JSON object's members straight into a line (no intermediate value per record).
struct JsonObject<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonObject<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.out.push('"');
        self.out.push_str(k);
        self.out.push_str("\":");
    }

    fn num(&mut self, k: &str, v: i64) {
        self.key(k);
        self.out.push_str(&v.to_string());
    }

    fn str(&mut self, k: &str, v: &str) {
        self.key(k);
        if v.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            // Serialising a string cannot fail.
            self.out
                .push_str(&serde_json::to_string(v).unwrap_or_default());
        } else {
            // Nothing to escape (ids, hashes, names): the text itself, quoted.
            self.out.push('"');
            self.out.push_str(v);
            self.out.push('"');
        }
    }

    fn opt(&mut self, k: &str, v: &Option<String>) {
        match v {
            Some(v) => self.str(k, v),
            None => {
                self.key(k);
                self.out.push_str("null");
            }
        }
    }

    fn raw(&mut self, k: &str, json: &str) {
        self.key(k);
        self.out.push_str(json);
    }
}

fn header_line(format: Format) -> String {
    match format {
        Format::Csv => format!("{}\r\n", CSV_COLUMNS.join(",")),
        Format::Ndjson => String::new(),
    }
}

/// Writes a whole export to `out` (the CLI's `audit export`), calling `progress(seq)` after each
/// page; returns the number of events written.
pub async fn write_all(
    identity: &identity::Identity,
    export: &mut Export,
    format: Format,
    out: &mut impl std::io::Write,
    progress: &dyn Fn(i64),
) -> anyhow::Result<u64> {
    let mut written = 0_u64;
    let mut buf = header_line(format);
    loop {
        let page = export.next_page(identity).await?;
        let Some(last) = page.last() else {
            break;
        };
        let last_seq = last.0.seq;
        for (r, detail) in &page {
            line(format, r, detail, &mut buf);
        }
        out.write_all(buf.as_bytes())?;
        buf.clear();
        written += page.len() as u64;
        progress(last_seq);
    }
    out.write_all(buf.as_bytes())?;
    progress(export.through);
    Ok(written)
}

/// The next chunk of the export: the header first, then a page at a time; `None` at the end.
async fn next_chunk(
    state: &AppState,
    export: &mut Export,
    format: Format,
    started: &mut bool,
) -> Option<Result<(String, usize), identity::Error>> {
    let mut out = String::new();
    if !*started {
        *started = true;
        out.push_str(&header_line(format));
    }
    match export.next_page(&state.identity).await {
        Err(e) => Some(Err(e)),
        Ok(page) if page.is_empty() => (!out.is_empty()).then_some(Ok((out, 0))),
        Ok(page) => {
            for (r, detail) in &page {
                line(format, r, detail, &mut out);
            }
            Some(Ok((out, page.len())))
        }
    }
}

/// Exports the events of the filter (the same filters as `GET /api/v1/audit-events`), oldest
/// first, as a streamed download. `X-Audit-Through` names the chain position it is pinned to.
#[utoipa::path(get, path = "/api/v1/audit-events/export", tag = "audit", params(ExportQuery, AuditQuery),
    responses((status = 200, description = "text/csv or application/x-ndjson, streamed"),
        (status = 403, body = super::api::ErrorBody)))]
pub async fn export_audit(
    State(state): State<AppState>,
    Caller(principal): Caller,
    export: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
    filter: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (Ok(Query(q)), Ok(Query(f))) = (export, filter) else {
        return Ok(bad_query());
    };
    stream(state, &principal, &f.filter(), &q).await
}

/// The same export for the dashboard (`/audit/export?format=…&<the Audit log page's filters>`),
/// with the staff session instead of a key; the file name carries `through`.
pub async fn dashboard_export(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    export: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(current) = rc.current.as_ref() else {
        return Redirect::to("/login").into_response();
    };
    let (Ok(Query(q)), Ok(Query(f))) = (export, filter) else {
        return bad_query();
    };
    let filter = match f.to_identity() {
        Ok(f) => f,
        Err(e) => return client_error(StatusCode::UNPROCESSABLE_ENTITY, &e.code, &e.message),
    };
    match stream(state, &current.principal, &filter, &q).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn stream(
    state: AppState,
    principal: &identity::Principal,
    filter: &identity::audit::Filter,
    q: &ExportQuery,
) -> Result<Response, ApiError> {
    let format = q.format.unwrap_or(Format::Csv);
    let export = identity::audit::export(&state.identity, principal, filter, q.through).await?;
    let through = export.through;
    // Fused: the body may be polled once more after its end.
    let stream = futures_util::stream::unfold(
        (state, export, false),
        move |(state, mut export, mut started)| async move {
            match next_chunk(&state, &mut export, format, &mut started).await {
                None => None,
                Some(Ok((text, _))) => Some((Ok(Bytes::from(text)), (state, export, started))),
                Some(Err(e)) => {
                    tracing::error!(error = %app::ssr::error_chain(&e), "audit export failed");
                    Some((
                        Err(std::io::Error::other("export failed")),
                        (state, export, started),
                    ))
                }
            }
        },
    );
    let (content_type, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    let mut res = Body::from_stream(futures_util::StreamExt::fuse(stream)).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"audit-{through}.{ext}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&through.to_string()) {
        headers.insert("x-audit-through", v);
    }
    Ok(res)
}

fn bad_query() -> Response {
    client_error(
        StatusCode::BAD_REQUEST,
        "invalid_query",
        "format is csv or ndjson; through, before, limit, from and to are integers.",
    )
}

/// What the signature covers: the export's SHA-256 and how to regenerate it.
#[derive(Serialize, ToSchema)]
struct Manifest {
    sha256: String,
    bytes: u64,
    events: u64,
    format: Format,
    through: i64,
    #[schema(value_type = Object)]
    filter: identity::audit::Filter,
    issuer: String,
    signed_at: String,
}

/// The detached signature of an export: regenerates the export for the same filter, `format` and
/// `through`, and signs a manifest of its SHA-256 with the current RS256 key (in the JWKS under
/// `kid`). Verify with openssl (docs/design/audit.md).
#[utoipa::path(get, path = "/api/v1/audit-events/export/signature", tag = "audit",
    params(ExportQuery, AuditQuery),
    responses((status = 200, body = Object), (status = 403, body = super::api::ErrorBody)))]
pub async fn export_signature(
    State(state): State<AppState>,
    Caller(principal): Caller,
    export: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
    filter: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let (Ok(Query(q)), Ok(Query(f))) = (export, filter) else {
        return Ok(bad_query());
    };
    signature(state, &principal, f.filter(), &q).await
}

/// The signature of a dashboard export (`/audit/export/signature?through=…&<the page's filters>`).
pub async fn dashboard_signature(
    State(state): State<AppState>,
    Extension(rc): Extension<RequestContext>,
    export: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
    filter: Result<Query<AuditFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(current) = rc.current.as_ref() else {
        return Redirect::to("/login").into_response();
    };
    let (Ok(Query(q)), Ok(Query(f))) = (export, filter) else {
        return bad_query();
    };
    let filter = match f.to_identity() {
        Ok(f) => f,
        Err(e) => return client_error(StatusCode::UNPROCESSABLE_ENTITY, &e.code, &e.message),
    };
    let mut res = match signature(state, &current.principal, filter, &q).await {
        Ok(res) => res,
        Err(e) => return e.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"audit-{}.sig.json\"",
        q.through.unwrap_or(0)
    )) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

async fn signature(
    state: AppState,
    principal: &identity::Principal,
    filter: identity::audit::Filter,
    q: &ExportQuery,
) -> Result<Response, ApiError> {
    let Some(through) = q.through else {
        return Ok(client_error(
            StatusCode::BAD_REQUEST,
            "through_required",
            "Pass the X-Audit-Through of the export to sign.",
        ));
    };
    let format = q.format.unwrap_or(Format::Csv);
    let mut export =
        identity::audit::export(&state.identity, principal, &filter, Some(through)).await?;
    let (mut hash, mut bytes, mut events, mut started) = (Sha256::new(), 0_u64, 0_u64, false);
    while let Some(chunk) = next_chunk(&state, &mut export, format, &mut started).await {
        let (text, n) = chunk?;
        hash.update(text.as_bytes());
        bytes += text.len() as u64;
        events += n as u64;
    }
    let manifest = Manifest {
        sha256: hex::encode(hash.finalize()),
        bytes,
        events,
        format,
        through: export.through,
        filter,
        issuer: state.identity.settings().issuer.clone(),
        signed_at: identity::Timestamp::now().rfc3339(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap_or_default();
    let (kid, signature, public_key_pem) =
        identity::keys::sign_detached(&state.identity, &manifest_bytes)?;
    Ok(axum::Json(json!({
        "manifest": manifest,
        "manifest_b64": STANDARD.encode(&manifest_bytes),
        "alg": "RS256",
        "kid": kid,
        "signature": STANDARD.encode(signature),
        "public_key_pem": public_key_pem,
    }))
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An NDJSON line, written member by member, is the record exactly as the API serialises it.
    #[test]
    fn ndjson_lines_are_the_api_records() {
        let detail = r#"{"after":{"name":"Ada \"the\" first","roles":["a","b"]},"n":1}"#;
        let mut record = Record {
            seq: 42,
            event_id: "e-1".into(),
            event: "user.updated".into(),
            outcome: "success".into(),
            actor_type: "staff".into(),
            actor_id: Some("s-1".into()),
            actor_label: Some("Zoë \\ o@example.com\t\u{1}".into()),
            target_type: Some("user".into()),
            target_id: Some("u-1".into()),
            ip: None,
            user_agent: Some("agent, with \"quotes\"\n".into()),
            request_id: None,
            detail: serde_json::Value::Null,
            created_at: identity::Timestamp::from_millis(1_764_000_000_123),
            prev_hash: "0".repeat(64),
            hash: "f".repeat(64),
            category: "user".into(),
            application_id: None,
            user_id: Some("u-1".into()),
        };
        let mut out = String::new();
        line(Format::Ndjson, &record, detail, &mut out);
        assert!(out.ends_with("}\n") && out.matches('\n').count() == 1);
        record.detail = serde_json::from_str(detail).expect("detail");
        let written: serde_json::Value = serde_json::from_str(&out).expect("a JSON line");
        assert_eq!(written, serde_json::to_value(&record).expect("record"));
        // CSV quotes what needs quoting and keeps the detail as stored.
        let mut csv = String::new();
        line(Format::Csv, &record, detail, &mut csv);
        assert!(csv.contains("\"agent, with \"\"quotes\"\"\n\""));
        assert!(csv.contains(&format!("\"{}\"", detail.replace('"', "\"\""))));
        assert!(csv.ends_with("\r\n"));
    }
}
