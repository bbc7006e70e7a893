//! `import_stream` on the operators' socket: the daemon asks for the file, reads it as it
//! arrives (checked first, then again to write it), and tells the client how far it has
//! got. The connection ends with the import, whichever way it ends: a client that is still
//! sending when an error ends it is not read further.

use super::{send, Limits};
use qbo_core::identity::Actor;
use qbo_service::{ImportFrame, ImportPass, ImportUpload, Reply, Service, ServiceError};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// What the request asked for.
pub(super) struct Asked {
    pub file: String,
    pub update: bool,
    pub from_line: usize,
}

pub(super) async fn import_stream(
    svc: &Service,
    actor: &Actor,
    asked: Asked,
    reader: BufReader<OwnedReadHalf>,
    write: &mut OwnedWriteHalf,
    limits: Limits,
    max: u64,
) -> anyhow::Result<()> {
    let drain = limits.idle_timeout;
    let run = match svc
        .import_begin(actor, &asked.file, asked.update, asked.from_line)
        .await
    {
        Ok(r) => r,
        Err(e) => return send(write, &Reply::from(e), drain).await,
    };
    // The client's lines, read on a task of their own so that waiting for the next one
    // never holds up the progress going the other way.
    let (tx, mut uploads) = mpsc::channel(1);
    let lines = tokio::spawn(read_uploads(reader, tx, limits, max));
    let mut tally = None;
    for pass in [ImportPass::Check, ImportPass::Write] {
        frame(write, &ImportFrame::Send { pass }, drain).await?;
        let mut feed = run.pass(pass);
        let mut progress = feed.progress();
        loop {
            tokio::select! {
                up = uploads.recv() => match up {
                    Some(Ok(ImportUpload::Text { text })) => {
                        if !feed.feed(text.into_bytes()).await {
                            break;
                        }
                    }
                    Some(Ok(ImportUpload::Unreadable { why })) => {
                        feed.fail(why).await;
                        break;
                    }
                    Some(Ok(ImportUpload::End)) => break,
                    Some(Err(why)) => {
                        lines.abort();
                        // The pass is dropped unfinished: its reader stops on an error,
                        // never taking what it had as the whole file.
                        return send(write, &Reply::from(ServiceError::Input(why)), drain).await;
                    }
                    // The client went away: the pass stops the same way.
                    None => return Ok(()),
                },
                Ok(()) = progress.changed() => {
                    let p = *progress.borrow_and_update();
                    frame(write, &ImportFrame::Progress(p), drain).await?;
                }
            }
        }
        let finished = feed.finish();
        tokio::pin!(finished);
        let done = loop {
            tokio::select! {
                done = &mut finished => break done,
                Ok(()) = progress.changed() => {
                    let p = *progress.borrow_and_update();
                    frame(write, &ImportFrame::Progress(p), drain).await?;
                }
            }
        };
        match done {
            Ok(t) => {
                if pass == ImportPass::Check {
                    frame(write, &ImportFrame::Checked(t), drain).await?;
                }
                tally = Some(t);
            }
            Err(f) => {
                lines.abort();
                let e = qbo_service::import::failure(f);
                if let ServiceError::Internal(err) = &e {
                    tracing::error!(file = %asked.file, "import failed: {err:#}");
                }
                return send(write, &Reply::from(e), drain).await;
            }
        }
    }
    lines.abort();
    let report = run.report(&tally.unwrap_or_default());
    frame(write, &ImportFrame::Done(report), drain).await
}

async fn frame(
    write: &mut OwnedWriteHalf,
    f: &ImportFrame,
    drain: std::time::Duration,
) -> anyhow::Result<()> {
    let reply = Reply::Ok {
        result: serde_json::value::to_raw_value(f)?,
    };
    send(write, &reply, drain).await
}

/// Reads the client's lines into `tx`; a line too long, late or unreadable ends with why.
async fn read_uploads(
    mut reader: BufReader<OwnedReadHalf>,
    tx: mpsc::Sender<Result<ImportUpload, String>>,
    limits: Limits,
    max: u64,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = timeout(
            limits.idle_timeout,
            (&mut reader).take(max + 1).read_until(b'\n', &mut line),
        )
        .await;
        let up = match read {
            Err(_) => Err(format!(
                "the import file stopped arriving for {} ([daemon] idle_timeout); nothing more was read",
                qbo_core::present::duration(limits.idle_timeout)
            )),
            Ok(Err(e)) => Err(format!("cannot read the import file from the connection: {e}")),
            Ok(Ok(0)) => return,
            Ok(Ok(_)) if line.len() as u64 > max => Err(format!(
                "an import piece larger than {max} bytes; send the file in smaller pieces"
            )),
            Ok(Ok(_)) => serde_json::from_slice::<ImportUpload>(&line).map_err(|e| {
                format!("an import piece the daemon cannot read ({e}); are client and daemon the same version?")
            }),
        };
        let stop = up.is_err();
        if tx.send(up).await.is_err() || stop {
            return;
        }
    }
}
