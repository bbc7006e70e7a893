//! The operators' socket. Each connection is identified by the kernel's peer credentials
//! (uid → account → groups → role); nothing the client sends can change who it is. Requests
//! are JSON lines answered by `Service::handle`; `watch` streams committed changes.

use super::roles::RoleMap;
use crate::identity::{account_name, groups_of, ssh_client_address, Actor, Interface, Role};
use crate::service::{protocol, Reply, Request, Service, ServiceError};
use anyhow::Context;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

/// Largest request accepted (an import file travels inside one).
const MAX_REQUEST: u64 = 64 * 1024 * 1024;

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
        let gid = crate::identity::group_id(g).with_context(|| {
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
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let svc = svc.clone();
                    let roles = roles.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        if let Err(e) = connection(stream, svc, roles, stop).await {
                            tracing::debug!(error = %e, "operator connection ended");
                        }
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
    let _ = std::fs::remove_file(&path);
}

/// Who is on the other end, from the kernel.
fn caller(stream: &UnixStream, roles: &RoleMap) -> std::io::Result<Actor> {
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
    Ok(Actor {
        role: roles.role_for(&account, &groups),
        account,
        uid: cred.uid(),
        ssh_client: ssh_client_address(ssh.as_deref()),
        interface: Interface::Cli,
        request_id: None,
    })
}

async fn connection(
    stream: UnixStream,
    svc: Service,
    roles: RoleMap,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let actor = caller(&stream, &roles)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_REQUEST)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(());
        }
        let (request, declared) = match protocol::decode_line(&line) {
            Ok(r) => r,
            Err(e) => {
                let reply = Reply::from(ServiceError::Input(format!("malformed request: {e}")));
                send(&mut write, &reply).await?;
                continue;
            }
        };
        // The front end the client says it is, for the record; the role stays the kernel's.
        let actor = Actor {
            interface: declared.unwrap_or(Interface::Cli),
            ..actor.clone()
        };
        if actor.role == Role::Unmapped {
            let mut reply = Reply::from(
                svc.deny_unmapped(&actor.for_request(), request.verb())
                    .await,
            );
            if let Reply::Error { message, .. } = &mut reply {
                message.push_str(&format!(
                    ": account {} is not mapped to any role in [roles]",
                    actor.account
                ));
            }
            send(&mut write, &reply).await?;
            continue;
        }
        if let Request::Watch = request {
            return watch_changes(&svc, &actor, &mut write, stop).await;
        }
        let reply = Reply::from_result(svc.handle(&actor.for_request(), request).await);
        send(&mut write, &reply).await?;
    }
}

async fn watch_changes(
    svc: &Service,
    actor: &Actor,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mut feed = match svc.watch(actor).await {
        Ok(f) => f,
        Err(e) => return send(write, &Reply::from(e)).await,
    };
    loop {
        tokio::select! {
            ev = feed.next() => match ev {
                Some(Ok(ev)) => send(write, &Reply::Ok { result: serde_json::to_value(ev)? }).await?,
                // The feed cannot go on (the changed row could not be read): say so and
                // end it; the client re-subscribes and re-lists.
                Some(Err(e)) => return send(write, &Reply::from(e)).await,
                None => return Ok(()),
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec(reply)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    Ok(())
}
