//! The operators' socket. Each connection is identified by the kernel's peer credentials
//! (uid → account → groups → role); nothing the client sends can change who it is. Requests
//! are JSON lines answered by `Service::handle`; `watch` streams committed changes.

mod import;

use super::roles::RoleMap;
use anyhow::Context;
use qbo_core::identity::{
    account_name, groups_of, ssh_client_address, Actor, Interface, Operator, Permission, Role,
};
use qbo_service::{protocol, Reply, Request, Service, ServiceError};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::timeout;

/// What one client may hold of the daemon: time, and a share of the connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// From a request's first byte to its end of line.
    pub request_timeout: Duration,
    /// Between requests, and for a reply to drain to a client that does not read.
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The most a caller of this role may send in one request. The role is known from the
/// peer credentials before anything is read, so a caller no role is mapped to can never
/// make the daemon buffer more than a few kilobytes.
fn request_limit(role: Role) -> u64 {
    const KIB: u64 = 1024;
    if role == Role::Unmapped {
        64 * KIB
    } else if role.allows(Permission::Import) {
        // The `import` op carries its text (16 MiB at most) inside one request, JSON-escaped;
        // 64 MiB leaves room for a client that escapes more than ours does. (`import FILE`
        // streams the file in pieces of a quarter megabyte and meets no limit.)
        64 * KIB * KIB
    } else {
        KIB * KIB
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b => format!("{} KiB", b >> 10),
    }
}

/// Binds the socket: refuses if another daemon answers there, replaces a stale file,
/// then sets mode 0660 and the configured group.
pub async fn bind(path: &Path, group: Option<&str>) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the socket directory {}", dir.display()))?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            anyhow::bail!("another qbo-console daemon already answers at {}; stop it first or set [daemon] socket", path.display());
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    // Bound under a staging name beside it (`ops.sock` → `ops.tmp`: no longer than the
    // real name when it has an extension, so a path within the 108-byte limit stays so),
    // given its mode and group, and only then renamed into place: no caller ever finds the
    // socket with the process umask's permissions. One left by a crash is replaced.
    let staging = match path.extension() {
        Some(e) if e == "tmp" => path.with_extension("tmq"),
        _ => path.with_extension("tmp"),
    };
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging).with_context(|| {
        format!(
            "cannot listen on {} (bound first as {})",
            path.display(),
            staging.display()
        )
    })?;
    let ready = restrict(&staging, path, group).and_then(|()| {
        std::fs::rename(&staging, path)
            .with_context(|| format!("cannot move the socket into place at {}", path.display()))
    });
    if let Err(e) = ready {
        let _ = std::fs::remove_file(&staging);
        return Err(e);
    }
    Ok(listener)
}

/// Mode 0660 and, when configured, the operators' group, on the freshly bound socket.
fn restrict(staged: &Path, path: &Path, group: Option<&str>) -> anyhow::Result<()> {
    std::fs::set_permissions(staged, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("cannot set mode 0660 on {}", path.display()))?;
    if let Some(g) = group {
        let gid = qbo_core::identity::group_id(g).with_context(|| {
            format!("[daemon] socket_group {g:?} is not a group on this machine")
        })?;
        let c = std::ffi::CString::new(staged.as_os_str().as_encoded_bytes())
            .context("socket path contains NUL")?;
        // SAFETY: `c` is a valid NUL-terminated path; uid -1 leaves the owner unchanged.
        let rc = unsafe { libc::chown(c.as_ptr(), u32::MAX, gid) };
        if rc != 0 {
            anyhow::bail!(
                "cannot give {} to group {g}: {}",
                path.display(),
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

pub async fn serve(
    listener: UnixListener,
    path: PathBuf,
    svc: Service,
    roles: RoleMap,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    // A cap of its own, so that however many clients the HTTP listener has, operators still
    // get in (and the other way round).
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_account = PerAccount::new(per_account_cap(limits.max_connections));
    // Tracked, so that shutdown waits for the requests in hand: a refusal one of them
    // counts must be counted before the daemon records the counts.
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let uid = match stream.peer_cred() {
                        Ok(cred) => cred.uid(),
                        Err(e) => {
                            tracing::warn!(error = %e, "operators' socket: no peer credentials for a client; disconnected");
                            continue;
                        }
                    };
                    // The account's share first: an account at its share must not take one
                    // of the slots left for the others, even for a moment.
                    let Some(share) = per_account.take(uid) else {
                        turn_away_account(&stream, uid, per_account.cap, limits.max_connections);
                        continue;
                    };
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        turn_away(&stream, limits.max_connections);
                        continue;
                    };
                    let svc = svc.clone();
                    let roles = roles.clone();
                    let stop = stop.clone();
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, svc, roles, limits, stop).await {
                            tracing::debug!(error = %e, "operator connection ended");
                        }
                        drop(slot);
                        drop(share);
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept on the operators' socket failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    // No new clients; those connected finish the request in hand (idle ones close at once).
    // The daemon's shutdown grace bounds this wait: past it this task, and with it every
    // connection in the set, is aborted.
    let _ = std::fs::remove_file(&path);
    while connections.join_next().await.is_some() {}
}

/// The most connections one account (uid) holds on the socket at once: an eighth of the
/// socket's cap, and never fewer than 4 (a console, its watch and a command or two).
/// Without it an account no role is mapped to could hold every slot and lock the admins out.
fn per_account_cap(max_connections: usize) -> usize {
    (max_connections / 8).max(4)
}

/// Connections held per uid.
struct PerAccount {
    held: Arc<Mutex<HashMap<u32, usize>>>,
    cap: usize,
}

/// One connection's place in its account's share; given back when dropped.
struct Share {
    held: Arc<Mutex<HashMap<u32, usize>>>,
    uid: u32,
}

impl PerAccount {
    fn new(cap: usize) -> PerAccount {
        PerAccount {
            held: Arc::default(),
            cap,
        }
    }

    fn take(&self, uid: u32) -> Option<Share> {
        let mut held = lock(&self.held);
        let n = held.entry(uid).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Share {
            held: self.held.clone(),
            uid,
        })
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut held = lock(&self.held);
        if let Some(n) = held.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                held.remove(&self.uid);
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The counts are updated in one step each, so a panic elsewhere cannot leave them torn.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One error line to a client whose account already holds its share of the socket.
fn turn_away_account(stream: &UnixStream, uid: u32, share: usize, cap: usize) {
    tracing::warn!(
        uid,
        share,
        "operators' socket: an account at its share of the connections was turned away"
    );
    say_and_drop(
        stream,
        format!(
            "uid {uid} already holds {share} connections to the daemon's socket, the most one account \
             may hold at once (an eighth of [daemon] max_socket_connections = {cap}, at least 4); \
             close one (an idle console or watch) and try again"
        ),
    );
}

/// One error line to a client over the connection cap, then the connection is dropped.
fn turn_away(stream: &UnixStream, cap: usize) {
    tracing::warn!(
        cap,
        "operators' socket at its connection cap ([daemon] max_socket_connections); a client was turned away"
    );
    say_and_drop(
        stream,
        format!(
            "the daemon is already serving {cap} connections on its socket ([daemon] max_socket_connections); \
             try again in a moment, or raise the limit"
        ),
    );
}

fn say_and_drop(stream: &UnixStream, why: String) {
    let reply = Reply::from(ServiceError::Internal(anyhow::anyhow!(why)));
    if let Ok(mut bytes) = serde_json::to_vec(&reply) {
        bytes.push(b'\n');
        // Best effort and never blocking: a fresh socket's send buffer is empty, and the
        // accept loop must not wait on a client.
        let _ = stream.try_write(&bytes);
    }
}

/// Who is on the other end, from the kernel: always an operator, whatever it asks.
fn caller(stream: &UnixStream, roles: &RoleMap) -> std::io::Result<Operator> {
    let cred = stream.peer_cred()?;
    let account = account_name(cred.uid());
    let groups = groups_of(&account, cred.gid());
    // The SSH address is read from the caller's own environment through /proc, which the
    // kernel provides; the client cannot put it in a request.
    let ssh = cred
        .pid()
        .and_then(|pid| std::fs::read(format!("/proc/{pid}/environ")).ok())
        .and_then(|env| {
            env.split(|b| *b == 0).find_map(|kv| {
                kv.strip_prefix(b"SSH_CONNECTION=")
                    .map(|v| String::from_utf8_lossy(v).into_owned())
            })
        });
    Ok(Operator {
        role: roles.role_for(&account, &groups),
        account,
        uid: cred.uid(),
        ssh_client: ssh_client_address(ssh.as_deref()),
        interface: Interface::Cli,
    })
}

/// Streams a paged answer: `$cursor = $begin` authorizes and records the read, then each
/// frame `$next` gives (evaluated afresh, with `$cursor` in hand) goes out as one reply line
/// until it gives none: rows a page at a time, then the end with the count. A refused begin
/// is the answer; an error midway ends it with an error line, so the client has no end
/// frame and says the answer is incomplete. Evaluates to the write's result. A macro, not a
/// function taking an async closure: such a closure's future cannot be shown `Send` to the
/// connection's task.
macro_rules! send_frames {
    ($write:expr, $drain:expr, $cursor:ident = $begin:expr, $next:expr) => {
        match $begin {
            Err(e) => send($write, &Reply::from(e), $drain).await,
            Ok(mut $cursor) => loop {
                let frame = match $next {
                    Ok(Some(f)) => f,
                    Ok(None) => break Ok(()),
                    Err(e) => break send($write, &Reply::from(e), $drain).await,
                };
                let result = serde_json::value::to_raw_value(&frame)?;
                if let Err(e) = send($write, &Reply::Ok { result }, $drain).await {
                    break Err(e);
                }
            },
        }
    };
}

async fn connection(
    stream: UnixStream,
    svc: Service,
    roles: RoleMap,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let actor = caller(&stream, &roles)?;
    let max = request_limit(actor.role);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Between requests the daemon may be stopping: nothing is in hand, so hang up.
        if *stop.borrow_and_update() {
            return Ok(());
        }
        let waited = tokio::select! {
            // A request begun before the stop is in hand: it goes first.
            biased;
            waited = timeout(limits.idle_timeout, reader.fill_buf()) => waited,
            _ = stop.changed() => return Ok(()),
        };
        match waited {
            Ok(first) => {
                if first?.is_empty() {
                    return Ok(());
                }
            }
            Err(_) => {
                let why = format!(
                    "connection closed after {} without a request ([daemon] idle_timeout); reconnect to go on",
                    qbo_core::present::duration(limits.idle_timeout)
                );
                return farewell(&mut write, ServiceError::Input(why)).await;
            }
        }
        // One more byte than allowed tells an oversized request from one exactly at the
        // limit; the reader stops there, whatever the client goes on sending.
        let mut bounded = (&mut reader).take(max + 1);
        match timeout(limits.request_timeout, bounded.read_until(b'\n', &mut line)).await {
            Ok(n) => {
                n?;
            }
            Err(_) => {
                tracing::warn!(account = %actor.account, uid = actor.uid, "operators' socket: a request did not arrive whole within [daemon] request_timeout; disconnected");
                let why = format!(
                    "request not complete within {} of its first byte ([daemon] request_timeout); \
                     connection closed: send each request as one line",
                    qbo_core::present::duration(limits.request_timeout)
                );
                return farewell(&mut write, ServiceError::Input(why)).await;
            }
        }
        if line.len() as u64 > max {
            tracing::warn!(account = %actor.account, uid = actor.uid, role = %actor.role, limit = max, "operators' socket: an oversized request was refused; disconnected");
            let why = format!(
                "request refused: larger than {}, the most the daemon reads in one request from role {}{}; connection closed",
                size(max),
                actor.role,
                if actor.role.allows(Permission::Import) {
                    " (import a file with `qbo-console import FILE`, which sends it in pieces)"
                } else {
                    " (only roles that may import send more)"
                }
            );
            return farewell(&mut write, ServiceError::Input(why)).await;
        }
        let (request, declared) = match protocol::decode_line(&line) {
            Ok(r) => r,
            Err(e) => {
                let reply = Reply::from(e);
                send(&mut write, &reply, limits.idle_timeout).await?;
                continue;
            }
        };
        // The front end the client says it is, for the record; the role stays the kernel's.
        let actor = Operator {
            interface: declared.unwrap_or(Interface::Cli),
            ..actor.clone()
        };
        let operator = actor;
        let actor = Actor::operator(operator.clone());
        if operator.role == Role::Unmapped {
            let mut reply = Reply::from(
                svc.deny_unmapped(&actor.for_request(), request.verb())
                    .await,
            );
            if let Reply::Error { message, .. } = &mut reply {
                message.push_str(&format!(
                    ": account {} is not mapped to any role in [roles]",
                    operator.account
                ));
            }
            // Then hang up: a caller with no role has nothing more to ask, and a connection
            // kept open would only hold a slot the operators need.
            return farewell_reply(&mut write, &reply).await;
        }
        if let Request::Watch = request {
            return watch_changes(&svc, &actor, &mut write, limits.idle_timeout, stop).await;
        }
        let drain = limits.idle_timeout;
        if let Request::ListStream {
            status,
            environment,
            filter,
            limit,
        } = request
        {
            let (caller, query) = (
                actor.for_request(),
                qbo_service::ListQuery {
                    status,
                    environment,
                    filter,
                    limit,
                },
            );
            send_frames!(
                &mut write,
                drain,
                c = svc.list_begin(&caller, &query).await,
                svc.list_next_frame(&mut c).await
            )?;
            continue;
        }
        if let Request::AuditTailStream { n } = request {
            let caller = actor.for_request();
            send_frames!(
                &mut write,
                drain,
                c = svc.audit_tail_begin(&caller, n).await,
                svc.audit_tail_next_frame(&mut c).await
            )?;
            continue;
        }
        if let Request::LinksStream = request {
            let caller = actor.for_request();
            send_frames!(
                &mut write,
                drain,
                c = svc.links_begin(&caller).await,
                svc.links_next_frame(&mut c).await
            )?;
            continue;
        }
        if let Request::ForecastStream { days } = request {
            let caller = actor.for_request();
            send_frames!(
                &mut write,
                drain,
                c = svc.forecast_stream_begin(&caller, days).await,
                svc.forecast_stream_next(&mut c).await
            )?;
            continue;
        }
        if let Request::ImportStream {
            file,
            update,
            from_line,
        } = request
        {
            // The import ends the connection: its file's frames are its own to read.
            let asked = import::Asked {
                file,
                update,
                from_line,
            };
            return import::import_stream(
                &svc,
                &actor.for_request(),
                asked,
                reader,
                &mut write,
                limits,
                max,
            )
            .await;
        }
        if let Request::AuditExport { format, filter } = request {
            export(
                &svc,
                &actor.for_request(),
                format,
                filter,
                &mut write,
                limits.idle_timeout,
            )
            .await?;
            continue;
        }
        let reply = Reply::from_result(svc.handle(&actor.for_request(), request).await);
        send(&mut write, &reply, limits.idle_timeout).await?;
    }
}

/// The last word before the daemon hangs up on a client: said if the client can take it
/// within a second, then the connection closes either way.
async fn farewell(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    why: ServiceError,
) -> anyhow::Result<()> {
    farewell_reply(write, &Reply::from(why)).await
}

async fn farewell_reply(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
) -> anyhow::Result<()> {
    send(write, reply, Duration::from_secs(1)).await
}

async fn watch_changes(
    svc: &Service,
    actor: &Actor,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    drain: Duration,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut feed = match svc.watch(actor).await {
        Ok(f) => f,
        Err(e) => return send(write, &Reply::from(e), drain).await,
    };
    loop {
        tokio::select! {
            ev = feed.next() => match ev {
                Some(Ok(ev)) => send(write, &Reply::Ok { result: serde_json::value::to_raw_value(&ev)? }, drain).await?,
                // The feed cannot go on (the changed row could not be read): say so and
                // end it; the client re-subscribes and re-lists.
                Some(Err(e)) => return send(write, &Reply::from(e), drain).await,
                None => return Ok(()),
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// Streams an export: a `data` frame line, then its raw bytes, per page; the signed
/// manifest last. The manifest is made over exactly the bytes written here. An error ends
/// the export with an error line (the client then has no manifest, so no proof).
async fn export(
    svc: &Service,
    actor: &Actor,
    format: qbo_service::ExportFormat,
    filter: qbo_service::ExportFilter,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    drain: Duration,
) -> anyhow::Result<()> {
    use qbo_service::ExportFrame;
    let mut stream = match svc.audit_export_begin(actor, filter, format).await {
        Ok(s) => s,
        Err(e) => return send(write, &Reply::from(e), drain).await,
    };
    loop {
        let chunk = match stream.next_chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return send(write, &Reply::from(ServiceError::from(e)), drain).await,
        };
        let frame = ExportFrame::Data {
            len: chunk.len() as u64,
            rows: stream.tally.rows,
        };
        send(
            write,
            &Reply::Ok {
                result: serde_json::value::to_raw_value(&frame)?,
            },
            drain,
        )
        .await?;
        timeout(drain, write.write_all(&chunk))
            .await
            .map_err(|_| {
                anyhow::anyhow!("the client did not read its export within {drain:?}")
            })??;
    }
    let reply = match svc.audit_export_finish(actor, stream).await {
        Ok(m) => Reply::Ok {
            result: serde_json::value::to_raw_value(&ExportFrame::Manifest {
                manifest: Box::new(m),
            })?,
        },
        Err(e) => Reply::from(e),
    };
    send(write, &reply, drain).await
}

/// Writes one reply line; a client that leaves it unread for `drain` is given up on, so it
/// cannot hold its connection slot by not reading.
async fn send(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
    drain: Duration,
) -> anyhow::Result<()> {
    // A result is written as the text it was encoded to, between the envelope's two halves,
    // rather than copied into one more buffer of its size (a list of 100,000 connections
    // is about 100 MB).
    let (head, result, tail): (Vec<u8>, &[u8], &[u8]) = match reply {
        Reply::Ok { result } => (
            br#"{"status":"ok","result":"#.to_vec(),
            result.get().as_bytes(),
            b"}\n",
        ),
        Reply::Error { .. } => (serde_json::to_vec(reply)?, b"", b"\n"),
    };
    let written = async {
        write.write_all(&head).await?;
        write.write_all(result).await?;
        write.write_all(tail).await
    };
    timeout(drain, written)
        .await
        .map_err(|_| anyhow::anyhow!("the client did not read its reply within {drain:?}"))??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn written(reply: &Reply) -> String {
        let (a, mut b) = tokio::net::UnixStream::pair().expect("a socket pair");
        let (_read, mut write) = a.into_split();
        send(&mut write, reply, Duration::from_secs(5))
            .await
            .expect("sent");
        drop(write);
        drop(_read);
        let mut out = String::new();
        b.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn a_reply_is_one_line_of_the_json_its_envelope_serializes_to() {
        let result = serde_json::value::to_raw_value(&serde_json::json!([
            {"tenant": "acme \"quoted\"\n", "id": 1},
            null
        ]))
        .expect("encodes");
        let ok = Reply::Ok { result };
        let line = written(&ok).await;
        assert_eq!(
            line,
            format!("{}\n", serde_json::to_string(&ok).expect("encodes"))
        );
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back["status"], "ok");
        assert_eq!(back["result"][0]["tenant"], "acme \"quoted\"\n");

        let error = Reply::from(ServiceError::NotFound("no tenant \"x\"".into()));
        let line = written(&error).await;
        assert_eq!(
            line,
            format!("{}\n", serde_json::to_string(&error).expect("encodes"))
        );
    }
}
