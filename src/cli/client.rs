//! The CLI's side of the operators' socket: one request, one reply line (or a stream of
//! them for `watch`). The daemon identifies us by the kernel's peer credentials.

use super::{exit, Failure};
use crate::service::{Reply, Request, ServiceError};
use std::path::Path;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

fn unavailable(socket: &Path, e: &std::io::Error) -> Failure {
    let why = match e.kind() {
        std::io::ErrorKind::NotFound => "no socket there".to_string(),
        std::io::ErrorKind::ConnectionRefused => "nothing listens on it".to_string(),
        std::io::ErrorKind::PermissionDenied => {
            "permission denied: ask an admin to add you to the socket's group".to_string()
        }
        _ => e.to_string(),
    };
    Failure {
        code: exit::UNAVAILABLE,
        message: format!(
            "no qbo-console daemon answers at {} ({why}); start one with `qbo-console serve`, or run this command with --embedded if you hold the key",
            socket.display()
        ),
    }
}

async fn connect(socket: &Path, req: &Request) -> Result<BufReader<UnixStream>, Failure> {
    let mut stream = UnixStream::connect(socket)
        .await
        .map_err(|e| unavailable(socket, &e))?;
    let mut line = serde_json::to_vec(req).map_err(|e| Failure {
        code: exit::INTERNAL,
        message: e.to_string(),
    })?;
    line.push(b'\n');
    if let Err(e) = stream.write_all(&line).await {
        // The daemon hangs up on a request it refuses before reading it all (one over its
        // size limit, or over its connection cap), after saying why: read what it said.
        if !matches!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
        ) {
            return Err(unavailable(socket, &e));
        }
    }
    Ok(BufReader::new(stream))
}

fn lost(socket: &Path) -> Failure {
    Failure {
        code: exit::UNAVAILABLE,
        message: format!(
            "the daemon at {} closed the connection without answering; see its log",
            socket.display()
        ),
    }
}

fn parse(line: &str, socket: &Path) -> Result<Reply, Failure> {
    serde_json::from_str(line).map_err(|e| Failure {
        code: exit::INTERNAL,
        message: format!("the daemon at {} answered something unreadable ({e}); are client and daemon the same version?", socket.display()),
    })
}

/// The next reply on the connection, as the service's own result.
async fn next_reply(
    reader: &mut BufReader<UnixStream>,
    socket: &Path,
) -> Result<serde_json::Value, Failure> {
    let mut line = String::new();
    let n = reader
        .read_line(&mut line)
        .await
        .map_err(|e| unavailable(socket, &e))?;
    if n == 0 {
        return Err(lost(socket));
    }
    parse(&line, socket)?.into_result().map_err(Failure::from)
}

pub async fn call(socket: &Path, req: &Request) -> Result<serde_json::Value, Failure> {
    let mut reader = connect(socket, req).await?;
    next_reply(&mut reader, socket).await
}

/// Calls `each` for every streamed reply until the daemon hangs up or `each` says stop.
pub async fn stream(
    socket: &Path,
    req: &Request,
    mut each: impl FnMut(serde_json::Value) -> bool,
) -> Result<(), Failure> {
    let mut reader = connect(socket, req).await?;
    while each(next_reply(&mut reader, socket).await?) {}
    Ok(())
}

impl From<ServiceError> for Reply {
    fn from(e: ServiceError) -> Reply {
        Reply::from_result(Err(e))
    }
}
