//! The client over the operators' socket: one connection per request, one JSON line each
//! way (a stream of them for `watch`). The daemon identifies the caller by the kernel's
//! peer credentials, never by anything sent here.

use super::{Client, ClientError, ClientFuture, ClientResult, ExportSink, WatchStream};
use crate::protocol::{self, Denial, ErrorKind};
use crate::ExportFrame;
use crate::{
    AuditPage, AuditQuery, AuditRecord, AuditVerifyReport, ConnectionDetail, ConnectionView,
    ImportReport, Interface, ListQuery, PurgeReport, RefreshReport, Request, RevokeReport,
    RevokeRequest, Selection, SessionEvent, VerifyReport, WatchEvent,
};
use futures_util::stream::{self, StreamExt};
use qbo_core::audit::{ExportFilter, ExportFormat, Manifest};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

#[derive(Debug, Clone)]
pub struct SocketClient {
    socket: Arc<PathBuf>,
    interface: Option<Interface>,
}

impl SocketClient {
    pub fn new(socket: impl Into<PathBuf>) -> SocketClient {
        SocketClient {
            socket: Arc::new(socket.into()),
            interface: None,
        }
    }

    /// Names the front end (CLI, TUI) in the audit records of this client's requests.
    /// Informational only: the daemon takes the role from the kernel, whatever is declared.
    pub fn declaring(self, interface: Interface) -> SocketClient {
        SocketClient {
            interface: Some(interface),
            ..self
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn unavailable(&self, e: &std::io::Error) -> ClientError {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no socket there".to_string(),
            std::io::ErrorKind::ConnectionRefused => "nothing listens on it".to_string(),
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: ask an admin to add you to the socket's group".to_string()
            }
            _ => e.to_string(),
        };
        ClientError::Unavailable {
            socket: self.socket.to_path_buf(),
            why,
        }
    }

    fn lost(&self, why: Option<String>) -> ClientError {
        ClientError::ConnectionLost {
            socket: self.socket.to_path_buf(),
            why,
        }
    }

    /// Connects and sends the request line.
    /// Sends `req` and hands each row of the answer's frames to `sink` until the end frame;
    /// `rows` tells a frame of rows (`Ok`) from the end with its count (`Err`). `what` names
    /// the answer in errors ("the listing").
    async fn each_row<F: DeserializeOwned, T>(
        &self,
        req: &Request,
        what: &str,
        rows: fn(F) -> Result<Vec<T>, u64>,
        sink: &mut (dyn FnMut(&T) -> std::io::Result<()> + Send),
    ) -> ClientResult<u64> {
        let mut conn = self.send(req).await?;
        loop {
            let Some(frame) = conn.next::<F>().await? else {
                return Err(self.lost(Some(format!("{what} stopped before its end"))));
            };
            match rows(frame) {
                Ok(rows) => super::feed(&rows, sink, what)?,
                Err(count) => return Ok(count),
            }
        }
    }

    async fn send(&self, req: &Request) -> ClientResult<Connection> {
        let mut stream = UnixStream::connect(self.socket.as_path())
            .await
            .map_err(|e| self.unavailable(&e))?;
        let line = protocol::encode_line(req, self.interface)
            .map_err(|e| ClientError::Internal(format!("cannot encode the request: {e}")))?;
        if let Err(e) = stream.write_all(&line).await {
            // The daemon hangs up on a request it refuses before reading it all (one over
            // its size limit, or over its connection cap), after saying why: read what it
            // said instead of reporting the broken pipe.
            if !matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) {
                return Err(self.lost(Some(e.to_string())));
            }
        }
        Ok(Connection {
            client: self.clone(),
            reader: BufReader::new(stream),
        })
    }

    async fn call<T: DeserializeOwned>(&self, req: Request) -> ClientResult<T> {
        let mut conn = self.send(&req).await?;
        match conn.next().await? {
            Some(v) => Ok(v),
            None => Err(self.lost(None)),
        }
    }

    /// `import FILE`: asks to import, then sends the file each time the daemon asks for it
    /// (the check, then the writing), while reading its progress.
    async fn import_stream(
        &self,
        file: &super::ImportFile,
        progress: &tokio::sync::watch::Sender<Option<crate::ImportProgress>>,
    ) -> ClientResult<ImportReport> {
        use crate::{ImportFrame, ImportProgress};
        // Opened once here first: a path that is no regular file is named before anything
        // is sent.
        crate::open_import_file(&file.path)?;
        let name = file.path.display().to_string();
        let stream = UnixStream::connect(self.socket.as_path())
            .await
            .map_err(|e| self.unavailable(&e))?;
        let (read, mut write) = stream.into_split();
        let line = protocol::encode_line(
            &Request::ImportStream {
                file: name.clone(),
                update: file.update,
                from_line: file.from_line,
            },
            self.interface,
        )
        .map_err(|e| ClientError::Internal(format!("cannot encode the request: {e}")))?;
        write
            .write_all(&line)
            .await
            .map_err(|e| self.lost(Some(e.to_string())))?;
        let mut conn = Connection {
            client: self.clone(),
            reader: BufReader::new(read),
        };
        let mut write = Some(write);
        let mut sending: Option<tokio::task::JoinHandle<ClientResult<_>>> = None;
        let outcome = loop {
            let frame = match conn.next::<ImportFrame>().await {
                Ok(Some(f)) => f,
                Ok(None) => break Err(self.lost(Some("the import stopped before its end".into()))),
                Err(e) => break Err(e),
            };
            match frame {
                ImportFrame::Send { pass } => {
                    progress.send_replace(Some(ImportProgress {
                        pass,
                        rows: 0,
                        bytes: 0,
                    }));
                    // The daemon asks again only once it has the whole file: the last
                    // sending has ended, and gives the connection back.
                    if let Some(task) = sending.take() {
                        match task.await {
                            Ok(Ok(w)) => write = Some(w),
                            Ok(Err(e)) => break Err(e),
                            Err(e) => break Err(ClientError::Internal(e.to_string())),
                        }
                    }
                    let Some(w) = write.take() else {
                        break Err(ClientError::Protocol(
                            "the daemon asked for the import file while it was being sent".into(),
                        ));
                    };
                    sending = Some(tokio::spawn(send_file(
                        self.clone(),
                        file.path.clone(),
                        name.clone(),
                        w,
                    )));
                }
                ImportFrame::Progress(p) => {
                    progress.send_replace(Some(p));
                }
                ImportFrame::Checked(_) => {}
                ImportFrame::Done(report) => break Ok(report),
            }
        };
        if let Some(task) = sending {
            task.abort();
        }
        outcome
    }

    fn unreadable(&self, e: serde_json::Error) -> ClientError {
        ClientError::Protocol(format!(
            "the daemon at {} answered something unreadable ({e}); are client and daemon the same version?",
            self.socket.display()
        ))
    }

    /// The service's own error, as the daemon relayed it.
    fn refused(&self, kind: ErrorKind, message: String, denial: Option<Denial>) -> ClientError {
        match kind {
            ErrorKind::Denied => match denial {
                Some(d) => ClientError::Denied {
                    account: d.account,
                    role: d.role,
                    what: d.what,
                    message,
                },
                None => ClientError::Protocol(format!(
                    "the daemon at {} refused without saying whom it refused ({message}); are client and daemon the same version?",
                    self.socket.display()
                )),
            },
            ErrorKind::NotFound => ClientError::NotFound(message),
            ErrorKind::Ambiguous => ClientError::Ambiguous(message),
            ErrorKind::Input => ClientError::Input(message),
            ErrorKind::Internal => ClientError::Internal(message),
        }
    }
}

/// One open request: replies arrive one line each.
struct Connection<R = UnixStream> {
    client: SocketClient,
    reader: BufReader<R>,
}

/// A reply line as read: the result is left as the text it came as and decoded straight
/// into the type asked for. Going through `serde_json::Value` instead would build a tree
/// of every field of every row first: for a list of 100,000 connections several hundred
/// megabytes and most of the time the console takes to open.
#[derive(Deserialize)]
struct Envelope<'a> {
    status: ReplyStatus,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(default)]
    kind: Option<ErrorKind>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    denial: Option<Denial>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ReplyStatus {
    Ok,
    Error,
}

impl<R: tokio::io::AsyncRead + Unpin> Connection<R> {
    /// The next reply's result, or `None` when the daemon hung up cleanly.
    async fn next<T: DeserializeOwned>(&mut self) -> ClientResult<Option<T>> {
        let mut line = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .await
            .map_err(|e| self.client.lost(Some(e.to_string())))?;
        if n == 0 {
            return Ok(None);
        }
        let reply: Envelope =
            serde_json::from_slice(&line).map_err(|e| self.client.unreadable(e))?;
        match reply.status {
            // A result of `null` (an answer with nothing to say) reads as no result.
            ReplyStatus::Ok => serde_json::from_str(reply.result.map_or("null", RawValue::get))
                .map(Some)
                .map_err(|e| self.client.unreadable(e)),
            ReplyStatus::Error => match (reply.kind, reply.message) {
                (Some(kind), Some(message)) => {
                    Err(self.client.refused(kind, message, reply.denial))
                }
                _ => Err(ClientError::Protocol(format!(
                    "the daemon at {} answered an error without its kind and message; are client and daemon the same version?",
                    self.client.socket.display()
                ))),
            },
        }
    }

    /// The next watch event; the daemon hanging up is an error the watcher must hear.
    async fn event(&mut self) -> ClientResult<WatchEvent> {
        match self.next().await? {
            Some(ev) => Ok(ev),
            None => Err(self.client.lost(None)),
        }
    }
}

impl Client for SocketClient {
    fn list(&self, query: ListQuery) -> ClientFuture<'_, Vec<ConnectionView>> {
        Box::pin(self.call(Request::List {
            status: query.status,
            environment: query.environment,
            filter: query.filter,
            limit: query.limit,
        }))
    }

    fn list_each<'a>(
        &'a self,
        query: ListQuery,
        sink: &'a mut (dyn FnMut(&ConnectionView) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64> {
        Box::pin(async move {
            let req = Request::ListStream {
                status: query.status,
                environment: query.environment,
                filter: query.filter,
                limit: query.limit,
            };
            let rows = |f| match f {
                crate::ListFrame::Rows { rows } => Ok(rows),
                crate::ListFrame::End { count } => Err(count),
            };
            self.each_row(&req, "the listing", rows, sink).await
        })
    }

    fn window(&self, query: crate::WindowQuery) -> ClientFuture<'_, crate::WindowPage> {
        Box::pin(self.call(Request::Window(query)))
    }

    fn forecast_each<'a>(
        &'a self,
        days: Option<u32>,
        sink: &'a mut (dyn FnMut(crate::ForecastFrame) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, ()> {
        Box::pin(async move {
            let mut conn = self.send(&Request::ForecastStream { days }).await?;
            loop {
                let Some(frame) = conn.next::<crate::ForecastFrame>().await? else {
                    return Err(self.lost(Some("the forecast stopped before its end".into())));
                };
                let end = matches!(frame, crate::ForecastFrame::End { .. });
                sink(frame)
                    .map_err(|e| ClientError::Input(format!("cannot write the forecast: {e}")))?;
                if end {
                    return Ok(());
                }
            }
        })
    }

    fn show(&self, target: String) -> ClientFuture<'_, ConnectionDetail> {
        Box::pin(self.call(Request::Show { target }))
    }

    fn refresh(&self, selection: Selection) -> ClientFuture<'_, Vec<RefreshReport>> {
        let (targets, due, all, filter, expect) = selection.into_fields();
        Box::pin(self.call(Request::Refresh {
            targets,
            due,
            all,
            filter,
            expect,
        }))
    }

    fn verify(&self, selection: Selection) -> ClientFuture<'_, Vec<VerifyReport>> {
        let (targets, _, _, filter, expect) = selection.into_fields();
        Box::pin(self.call(Request::Verify {
            targets,
            filter,
            expect,
        }))
    }

    fn import(&self, file: String, text: String, update: bool) -> ClientFuture<'_, ImportReport> {
        Box::pin(self.call(Request::Import { file, text, update }))
    }

    fn import_file<'a>(
        &'a self,
        file: &'a super::ImportFile,
        progress: &'a tokio::sync::watch::Sender<Option<crate::ImportProgress>>,
    ) -> ClientFuture<'a, ImportReport> {
        Box::pin(self.import_stream(file, progress))
    }

    fn revoke(&self, r: RevokeRequest) -> ClientFuture<'_, Vec<RevokeReport>> {
        Box::pin(self.call(Request::Revoke {
            targets: r.targets,
            filter: r.filter,
            local_only_reason: r.local_only_reason,
            dry_run: r.dry_run,
            expect: r.expect,
        }))
    }

    fn purge(&self, dry_run: bool) -> ClientFuture<'_, PurgeReport> {
        Box::pin(self.call(Request::Purge { dry_run }))
    }

    fn audit_tail(&self, n: i64) -> ClientFuture<'_, Vec<AuditRecord>> {
        Box::pin(self.call(Request::AuditTail { n }))
    }

    fn audit_tail_each<'a>(
        &'a self,
        n: i64,
        sink: &'a mut (dyn FnMut(&AuditRecord) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64> {
        Box::pin(async move {
            let rows = |f| match f {
                crate::AuditFrame::Events { events } => Ok(events),
                crate::AuditFrame::End { count } => Err(count),
            };
            let req = Request::AuditTailStream { n };
            self.each_row(&req, "the audit tail", rows, sink).await
        })
    }

    fn audit_verify(&self) -> ClientFuture<'_, AuditVerifyReport> {
        Box::pin(self.call(Request::AuditVerify))
    }

    fn audit_page(&self, q: AuditQuery) -> ClientFuture<'_, AuditPage> {
        Box::pin(self.call(Request::AuditPage {
            before_seq: q.before_seq,
            limit: q.limit,
            tenant: q.tenant,
            actor: q.actor,
            action: q.action,
            outcome: q.outcome,
        }))
    }

    fn session(&self, event: SessionEvent) -> ClientFuture<'_, ()> {
        Box::pin(self.call(Request::Session { event }))
    }

    fn whoami(&self) -> ClientFuture<'_, qbo_core::identity::Operator> {
        Box::pin(self.call(Request::WhoAmI))
    }

    fn link(&self, r: crate::LinkRequest) -> ClientFuture<'_, crate::IssuedLink> {
        Box::pin(self.call(Request::Link {
            target: r.target,
            new_tenant: r.new_tenant,
            environment: r.environment,
            expires_secs: r.expires_secs,
        }))
    }

    fn links(&self) -> ClientFuture<'_, Vec<crate::LinkView>> {
        Box::pin(self.call(Request::Links))
    }

    fn links_each<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(&crate::LinkView) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64> {
        Box::pin(async move {
            let rows = |f| match f {
                crate::LinkFrame::Links { links } => Ok(links),
                crate::LinkFrame::End { count } => Err(count),
            };
            self.each_row(&Request::LinksStream, "the links", rows, sink)
                .await
        })
    }

    fn link_cancel(&self, id: String) -> ClientFuture<'_, crate::LinkView> {
        Box::pin(self.call(Request::LinkCancel { id }))
    }

    fn link_campaign(&self, r: crate::CampaignRequest) -> ClientFuture<'_, crate::IssuedCampaign> {
        Box::pin(self.call(Request::LinkCampaign {
            filter: r.filter,
            expect: r.expect,
            expires_secs: r.expires_secs,
        }))
    }

    fn campaigns(&self) -> ClientFuture<'_, Vec<crate::CampaignView>> {
        Box::pin(self.call(Request::Campaigns))
    }

    fn campaign(&self, id: i64) -> ClientFuture<'_, crate::CampaignView> {
        Box::pin(self.call(Request::Campaign { id }))
    }

    fn incidents(&self) -> ClientFuture<'_, Vec<crate::Incident>> {
        Box::pin(self.call(Request::Incidents))
    }

    fn db_backup(&self, path: String) -> ClientFuture<'_, crate::backup::BackupReport> {
        Box::pin(self.call(Request::DbBackup { path }))
    }

    fn db_restore_check(&self, path: String) -> ClientFuture<'_, crate::backup::RestoreDrill> {
        Box::pin(self.call(Request::DbRestoreCheck { path }))
    }

    fn incident(&self, id: i64) -> ClientFuture<'_, crate::IncidentDetail> {
        Box::pin(self.call(Request::Incident { id }))
    }

    fn keys_status(&self) -> ClientFuture<'_, crate::KeyStatus> {
        Box::pin(self.call(Request::KeysStatus))
    }

    fn forecast(&self, days: Option<u32>, limit: Option<u32>) -> ClientFuture<'_, crate::Forecast> {
        Box::pin(self.call(Request::Forecast { days, limit }))
    }

    fn support_bundle(
        &self,
        target: String,
        since: Option<String>,
    ) -> ClientFuture<'_, crate::SupportBundle> {
        Box::pin(self.call(Request::SupportBundle { target, since }))
    }

    fn posture(&self) -> ClientFuture<'_, crate::PostureReport> {
        Box::pin(self.call(Request::Posture))
    }

    fn apikey_create(
        &self,
        name: String,
        realms: Vec<String>,
        environment: Option<qbo_core::domain::Environment>,
    ) -> ClientFuture<'_, crate::CreatedApiKey> {
        Box::pin(self.call(Request::ApikeyCreate {
            name,
            realms,
            environment,
        }))
    }

    fn apikey_list(&self) -> ClientFuture<'_, Vec<crate::ApiKeyRecord>> {
        Box::pin(self.call(Request::ApikeyList))
    }

    fn apikey_revoke(&self, id: i64) -> ClientFuture<'_, crate::ApiKeyRecord> {
        Box::pin(self.call(Request::ApikeyRevoke { id }))
    }

    fn audit_export<'a>(
        &'a self,
        filter: ExportFilter,
        format: ExportFormat,
        sink: &'a mut (dyn ExportSink + Send),
    ) -> ClientFuture<'a, Manifest> {
        Box::pin(async move {
            let mut conn = self.send(&Request::AuditExport { format, filter }).await?;
            // Frames until the manifest; each data frame's line is followed by its bytes.
            let mut buf = Vec::new();
            loop {
                let frame: ExportFrame = match conn.next().await? {
                    Some(f) => f,
                    None => {
                        return Err(self.lost(Some("the export stopped before its manifest".into())))
                    }
                };
                match frame {
                    ExportFrame::Data { len, rows } => {
                        let len = usize::try_from(len).map_err(|_| {
                            ClientError::Protocol(format!("an export frame of {len} bytes"))
                        })?;
                        buf.resize(len, 0);
                        conn.reader
                            .read_exact(&mut buf)
                            .await
                            .map_err(|e| self.lost(Some(e.to_string())))?;
                        sink.write(&buf, rows).map_err(|e| {
                            ClientError::Input(format!("cannot write the export: {e}"))
                        })?;
                    }
                    ExportFrame::Manifest { manifest } => return Ok(*manifest),
                }
            }
        })
    }

    fn audit_pubkey(&self) -> ClientFuture<'_, String> {
        Box::pin(self.call(Request::AuditPubkey))
    }

    fn audit_archive(&self) -> ClientFuture<'_, crate::ArchiveReport> {
        Box::pin(self.call(Request::AuditArchive))
    }

    fn audit_quarantine(&self, from: i64) -> ClientFuture<'_, crate::QuarantineReport> {
        Box::pin(self.call(Request::AuditQuarantine { from }))
    }

    fn watch(&self) -> ClientFuture<'_, WatchStream> {
        Box::pin(async move {
            let mut conn = self.send(&Request::Watch).await?;
            // The first reply is the hello, or the refusal: a denied watch fails here.
            let hello = conn.event().await?;
            let rest = stream::unfold(Some(conn), |conn| async move {
                let mut conn = conn?;
                match conn.event().await {
                    Ok(ev) => Some((Ok(ev), Some(conn))),
                    // After an error the connection is of no further use: end the stream.
                    Err(e) => Some((Err(e), None)),
                }
            });
            Ok(stream::once(async { Ok(hello) }).chain(rest).boxed())
        })
    }
}

/// Sends an import file as `text` frames (`unreadable` where it cannot be read on), then
/// `end`; gives the connection's writing half back for the next reading.
async fn send_file(
    client: SocketClient,
    path: PathBuf,
    name: String,
    mut write: tokio::net::unix::OwnedWriteHalf,
) -> ClientResult<tokio::net::unix::OwnedWriteHalf> {
    use crate::ImportUpload;
    let lost = |e: std::io::Error| client.lost(Some(e.to_string()));
    let mut chunks = crate::TextChunks::new(&name);
    let mut block = vec![0u8; crate::import::PIECE_BYTES];
    let opened = crate::open_import_file(&path).map(|(f, _)| tokio::fs::File::from_std(f));
    let mut source = match opened {
        Ok(f) => Some(f),
        Err(e) => {
            let frame = ImportUpload::Unreadable { why: e.to_string() };
            write.write_all(&upload_line(&frame)?).await.map_err(lost)?;
            None
        }
    };
    while let Some(f) = source.as_mut() {
        let text = match f.read(&mut block).await {
            Ok(0) => chunks.finish().map(|()| None).map_err(|e| e.0),
            Ok(n) => chunks.push(&block[..n]).map(Some).map_err(|e| e.0),
            Err(e) => Err(format!("cannot read {name}: {e}")),
        };
        let frame = match text {
            Ok(Some(text)) => ImportUpload::Text { text },
            Ok(None) => ImportUpload::End,
            Err(e) => ImportUpload::Unreadable { why: e },
        };
        let last = !matches!(frame, ImportUpload::Text { .. });
        write.write_all(&upload_line(&frame)?).await.map_err(lost)?;
        if last {
            break;
        }
    }
    Ok(write)
}

fn upload_line(frame: &crate::ImportUpload) -> ClientResult<Vec<u8>> {
    let mut line = serde_json::to_vec(frame)
        .map_err(|e| ClientError::Internal(format!("cannot encode the import: {e}")))?;
    line.push(b'\n');
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, Status};
    use tokio::net::UnixListener;

    /// A stand-in daemon: answers each connection's request line with `replies`, then hangs
    /// up, and hands back the request lines it read.
    fn fake_daemon(
        dir: &tempfile::TempDir,
        replies: &[&str],
    ) -> (SocketClient, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let path = dir.path().join("ops.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let (seen, requests) = tokio::sync::mpsc::unbounded_channel();
        let replies: Vec<String> = replies.iter().map(|r| r.to_string()).collect();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                stream.read_line(&mut line).await.unwrap();
                let _ = seen.send(line);
                for r in &replies {
                    stream.get_mut().write_all(r.as_bytes()).await.unwrap();
                    stream.get_mut().write_all(b"\n").await.unwrap();
                }
            }
        });
        (SocketClient::new(path), requests)
    }

    fn view_json(id: i64, tenant: &str) -> String {
        format!(
            r#"{{"id":{id},"tenant":"{tenant}","realm_id":"123","environment":"sandbox","company_name":null,"status":"needs_reconnect","status_reason":null,"access_expires_at":null,"access_expires_in_secs":null,"refresh_issued_at":null,"refresh_expires_at":null,"refresh_window_age_days":null,"refresh_days_left":null,"hard_expires_at":null,"last_refresh_at":null,"last_refresh_outcome":"failed","last_error_class":"invalid_grant","last_error_detail":null,"last_intuit_tid":null,"last_sync_at":null,"last_sync_status":null,"last_sync_detail":null,"consecutive_failures":1,"next_attempt_at":null,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}}"#
        )
    }

    #[tokio::test]
    async fn without_a_daemon_the_client_is_unavailable_and_says_how_to_start_one() {
        let dir = tempfile::tempdir().unwrap();
        let client = SocketClient::new(dir.path().join("nobody.sock"));
        let e = client.whoami().await.unwrap_err();
        assert!(matches!(e, ClientError::Unavailable { .. }), "{e:?}");
        let m = e.to_string();
        assert!(
            m.contains("no socket there")
                && m.contains("qbo-console serve")
                && m.contains("--embedded"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn a_denial_names_the_account_the_role_and_what_was_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (client, mut requests) = fake_daemon(
            &dir,
            &[
                r#"{"status":"error","kind":"denied","message":"permission denied: bob (role viewer) may not refresh in bulk","denial":{"account":"bob","role":"viewer","what":"refresh in bulk"}}"#,
            ],
        );
        let e = client.refresh(Selection::Due).await.unwrap_err();
        assert_eq!(
            e,
            ClientError::Denied {
                account: "bob".into(),
                role: Role::Viewer,
                what: "refresh in bulk".into(),
                message: "permission denied: bob (role viewer) may not refresh in bulk".into(),
            }
        );
        // The selection went out as the daemon reads it.
        let sent: serde_json::Value =
            serde_json::from_str(&requests.recv().await.unwrap()).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"op": "refresh", "targets": [], "due": true, "all": false})
        );
    }

    #[tokio::test]
    async fn a_client_declares_its_front_end_on_each_request() {
        let dir = tempfile::tempdir().unwrap();
        let (client, mut requests) = fake_daemon(
            &dir,
            &[
                r#"{"status":"ok","result":{"account":"alice","uid":1000,"ssh_client":null,"interface":"tui","role":"viewer"}}"#,
            ],
        );
        let me = client.declaring(Interface::Tui).whoami().await.unwrap();
        assert_eq!(me.interface, Interface::Tui);
        let sent: serde_json::Value =
            serde_json::from_str(&requests.recv().await.unwrap()).unwrap();
        assert_eq!(
            sent,
            serde_json::json!({"op": "who_am_i", "interface": "tui"})
        );
    }

    #[tokio::test]
    async fn the_services_error_kinds_arrive_typed() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = fake_daemon(
            &dir,
            &[
                r#"{"status":"error","kind":"ambiguous","message":"\"acme\" matches 2 connections"}"#,
            ],
        );
        let e = client.show("acme".into()).await.unwrap_err();
        assert_eq!(
            e,
            ClientError::Ambiguous("\"acme\" matches 2 connections".into())
        );
    }

    #[tokio::test]
    async fn a_hang_up_is_a_lost_connection_and_garbage_a_protocol_error() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = fake_daemon(&dir, &[]);
        let e = client.list(ListQuery::default()).await.unwrap_err();
        assert!(
            matches!(e, ClientError::ConnectionLost { why: None, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("closed the connection without answering"),
            "{e}"
        );

        let dir = tempfile::tempdir().unwrap();
        let (client, _) = fake_daemon(&dir, &["<html>surprise</html>"]);
        let e = client.audit_verify().await.unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
        assert!(e.to_string().contains("same version"), "{e}");

        // A well-formed reply of the wrong shape is a protocol error too.
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = fake_daemon(&dir, &[r#"{"status":"ok","result":{"rows":3}}"#]);
        let e = client.list(ListQuery::default()).await.unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
    }

    #[tokio::test]
    async fn the_watch_stream_yields_the_hello_changes_and_gaps_then_the_hang_up() {
        let dir = tempfile::tempdir().unwrap();
        let change = format!(
            r#"{{"status":"ok","result":{{"type":"change","audit_seq":41,"connection_id":7,"connection":{}}}}}"#,
            view_json(7, "acme")
        );
        let replies = [
            r#"{"status":"ok","result":{"type":"hello","protocol":1,"account":"alice","role":"support"}}"#,
            change.as_str(),
            r#"{"status":"ok","result":{"type":"missed","count":12}}"#,
        ];
        let (client, mut requests) = fake_daemon(&dir, &replies);
        let events: Vec<ClientResult<WatchEvent>> = client.watch().await.unwrap().collect().await;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&requests.recv().await.unwrap()).unwrap(),
            serde_json::json!({"op": "watch"})
        );
        assert_eq!(events.len(), 4, "{events:?}");
        assert!(matches!(
            &events[0],
            Ok(WatchEvent::Hello { protocol: 1, role: Role::Support, account, .. }) if account == "alice"
        ));
        match &events[1] {
            Ok(WatchEvent::Change {
                audit_seq: 41,
                connection_id: Some(7),
                connection: Some(c),
            }) => assert!(c.tenant == "acme" && c.status == Status::NeedsReconnect),
            other => panic!("{other:?}"),
        }
        assert!(matches!(events[2], Ok(WatchEvent::Missed { count: 12 })));
        assert!(matches!(events[3], Err(ClientError::ConnectionLost { .. })));
    }

    #[tokio::test]
    async fn an_answer_of_null_reads_as_nothing_and_an_error_must_say_its_kind() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = fake_daemon(&dir, &[r#"{"status":"ok","result":null}"#]);
        client.session(crate::SessionEvent::Opened).await.unwrap();

        let dir = tempfile::tempdir().unwrap();
        let (client, _) = fake_daemon(&dir, &[r#"{"status":"error","message":"no"}"#]);
        let e = client.whoami().await.unwrap_err();
        assert!(matches!(e, ClientError::Protocol(_)), "{e:?}");
        assert!(e.to_string().contains("without its kind"), "{e}");
    }

    #[tokio::test]
    async fn a_refused_watch_fails_when_asked_not_in_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (client, _) = fake_daemon(
            &dir,
            &[
                r#"{"status":"error","kind":"denied","message":"permission denied: eve (role unmapped) may not watch","denial":{"account":"eve","role":"unmapped","what":"watch"}}"#,
            ],
        );
        match client.watch().await {
            Err(ClientError::Denied {
                role: Role::Unmapped,
                what,
                ..
            }) => assert_eq!(what, "watch"),
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("a refused watch must not give a stream"),
        }
    }
}
