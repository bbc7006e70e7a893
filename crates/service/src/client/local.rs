//! The service in this process: the embedded mode, for an admin who holds the key.

use super::{Client, ClientError, ClientFuture, ExportSink, WatchStream};
use crate::{
    Actor, AuditPage, AuditQuery, AuditRecord, AuditVerifyReport, ConnectionDetail, ConnectionView,
    ImportReport, ListQuery, PurgeReport, RefreshReport, RevokeReport, RevokeRequest, Selection,
    Service, SessionEvent, VerifyReport,
};
use futures_util::stream::{self, StreamExt};
use qbo_core::audit::{ExportFilter, ExportFormat, Manifest};

#[derive(Clone)]
pub struct LocalClient {
    service: Service,
    /// The caller every request is made as; each request gets its own request id.
    actor: Actor,
}

impl LocalClient {
    pub fn new(service: Service, actor: Actor) -> LocalClient {
        LocalClient { service, actor }
    }

    pub fn service(&self) -> &Service {
        &self.service
    }
}

/// Runs a service call as a fresh request of the client's actor.
macro_rules! as_caller {
    ($self:ident, |$caller:ident| $call:expr) => {
        Box::pin(async move {
            let $caller = &$self.actor.for_request();
            $call.await.map_err(ClientError::from)
        })
    };
}

impl Client for LocalClient {
    fn list(&self, query: ListQuery) -> ClientFuture<'_, Vec<ConnectionView>> {
        as_caller!(self, |c| self.service.list(c, &query))
    }

    fn list_each<'a>(
        &'a self,
        query: ListQuery,
        sink: &'a mut (dyn FnMut(&ConnectionView) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64> {
        Box::pin(async move {
            let caller = &self.actor.for_request();
            let mut cursor = self.service.list_begin(caller, &query).await?;
            while let Some(rows) = self.service.list_next(&mut cursor).await? {
                super::feed(&rows, sink, "the listing")?;
            }
            Ok(cursor.sent)
        })
    }

    fn forecast_each<'a>(
        &'a self,
        days: Option<u32>,
        sink: &'a mut (dyn FnMut(crate::ForecastFrame) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, ()> {
        Box::pin(async move {
            let caller = &self.actor.for_request();
            let mut walk = self.service.forecast_stream_begin(caller, days).await?;
            while let Some(frame) = self.service.forecast_stream_next(&mut walk).await? {
                sink(frame)
                    .map_err(|e| ClientError::Input(format!("cannot write the forecast: {e}")))?;
            }
            Ok(())
        })
    }

    fn window(&self, query: crate::WindowQuery) -> ClientFuture<'_, crate::WindowPage> {
        as_caller!(self, |c| self.service.window(c, &query))
    }

    fn show(&self, target: String) -> ClientFuture<'_, ConnectionDetail> {
        as_caller!(self, |c| self.service.show(c, &target))
    }

    fn refresh(&self, selection: Selection) -> ClientFuture<'_, Vec<RefreshReport>> {
        as_caller!(self, |c| self.service.refresh(c, &selection))
    }

    fn verify(&self, selection: Selection) -> ClientFuture<'_, Vec<VerifyReport>> {
        as_caller!(self, |c| self.service.verify(c, &selection))
    }

    fn import(&self, file: String, text: String, update: bool) -> ClientFuture<'_, ImportReport> {
        as_caller!(self, |c| self.service.import(c, &text, &file, update))
    }

    fn import_file<'a>(
        &'a self,
        file: &'a super::ImportFile,
        progress: &'a tokio::sync::watch::Sender<Option<crate::ImportProgress>>,
    ) -> ClientFuture<'a, ImportReport> {
        as_caller!(self, |c| self.service.import_file(
            c,
            &file.path,
            file.from_line,
            file.update,
            progress
        ))
    }

    fn revoke(&self, request: RevokeRequest) -> ClientFuture<'_, Vec<RevokeReport>> {
        as_caller!(self, |c| self.service.revoke(c, &request))
    }

    fn purge(&self, dry_run: bool) -> ClientFuture<'_, PurgeReport> {
        as_caller!(self, |c| self.service.purge(c, dry_run))
    }

    fn audit_tail(&self, n: i64) -> ClientFuture<'_, Vec<AuditRecord>> {
        as_caller!(self, |c| self.service.audit_tail(c, n))
    }

    fn audit_tail_each<'a>(
        &'a self,
        n: i64,
        sink: &'a mut (dyn FnMut(&AuditRecord) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64> {
        Box::pin(async move {
            let caller = &self.actor.for_request();
            let mut cursor = self.service.audit_tail_begin(caller, n).await?;
            while let Some(events) = self.service.audit_tail_next(&mut cursor).await? {
                super::feed(&events, sink, "the audit tail")?;
            }
            Ok(cursor.sent)
        })
    }

    fn audit_page(&self, query: AuditQuery) -> ClientFuture<'_, AuditPage> {
        as_caller!(self, |c| self.service.audit_page(c, &query))
    }

    fn session(&self, event: SessionEvent) -> ClientFuture<'_, ()> {
        as_caller!(self, |c| self.service.session(c, event))
    }

    fn audit_verify(&self) -> ClientFuture<'_, AuditVerifyReport> {
        as_caller!(self, |c| self.service.audit_verify(c))
    }

    fn whoami(&self) -> ClientFuture<'_, qbo_core::identity::Operator> {
        as_caller!(self, |c| self.service.whoami(c))
    }

    fn link(&self, request: crate::LinkRequest) -> ClientFuture<'_, crate::IssuedLink> {
        as_caller!(self, |c| self.service.link_issue(c, &request))
    }

    fn links(&self) -> ClientFuture<'_, Vec<crate::LinkView>> {
        as_caller!(self, |c| self.service.links_open(c))
    }

    fn links_each<'a>(
        &'a self,
        sink: &'a mut (dyn FnMut(&crate::LinkView) -> std::io::Result<()> + Send),
    ) -> ClientFuture<'a, u64> {
        Box::pin(async move {
            let caller = &self.actor.for_request();
            let mut cursor = self.service.links_begin(caller).await?;
            while let Some(frame) = self.service.links_next_frame(&mut cursor).await? {
                if let crate::LinkFrame::Links { links } = frame {
                    super::feed(&links, sink, "the links")?;
                }
            }
            Ok(cursor.sent)
        })
    }

    fn link_cancel(&self, id: String) -> ClientFuture<'_, crate::LinkView> {
        as_caller!(self, |c| self.service.link_cancel(c, &id))
    }

    fn link_campaign(
        &self,
        request: crate::CampaignRequest,
    ) -> ClientFuture<'_, crate::IssuedCampaign> {
        as_caller!(self, |c| self.service.link_campaign(c, &request))
    }

    fn campaigns(&self) -> ClientFuture<'_, Vec<crate::CampaignView>> {
        as_caller!(self, |c| self.service.campaigns(c))
    }

    fn campaign(&self, id: i64) -> ClientFuture<'_, crate::CampaignView> {
        as_caller!(self, |c| self.service.campaign(c, id))
    }

    fn incidents(&self) -> ClientFuture<'_, Vec<crate::Incident>> {
        as_caller!(self, |c| self.service.incidents(c))
    }

    fn db_backup(&self, path: String) -> ClientFuture<'_, crate::backup::BackupReport> {
        as_caller!(self, |c| self.service.db_backup(c, &path))
    }

    fn db_restore_check(&self, path: String) -> ClientFuture<'_, crate::backup::RestoreDrill> {
        as_caller!(self, |c| self.service.db_restore_check(c, &path))
    }

    fn incident(&self, id: i64) -> ClientFuture<'_, crate::IncidentDetail> {
        as_caller!(self, |c| self.service.incident(c, id))
    }

    fn keys_status(&self) -> ClientFuture<'_, crate::KeyStatus> {
        as_caller!(self, |c| self.service.keys_status(c))
    }

    fn forecast(&self, days: Option<u32>, limit: Option<u32>) -> ClientFuture<'_, crate::Forecast> {
        as_caller!(self, |c| self.service.forecast(c, days, limit))
    }

    fn support_bundle(
        &self,
        target: String,
        since: Option<String>,
    ) -> ClientFuture<'_, crate::SupportBundle> {
        as_caller!(self, |c| self.service.support_bundle(
            c,
            &target,
            since.as_deref()
        ))
    }

    fn posture(&self) -> ClientFuture<'_, crate::PostureReport> {
        as_caller!(self, |c| self.service.posture(c))
    }

    fn apikey_create(
        &self,
        name: String,
        realms: Vec<String>,
        environment: Option<qbo_core::domain::Environment>,
    ) -> ClientFuture<'_, crate::CreatedApiKey> {
        as_caller!(self, |c| self.service.apikey_create(
            c,
            &name,
            &realms,
            environment
        ))
    }

    fn apikey_list(&self) -> ClientFuture<'_, Vec<crate::ApiKeyRecord>> {
        as_caller!(self, |c| self.service.apikey_list(c))
    }

    fn apikey_revoke(&self, id: i64) -> ClientFuture<'_, crate::ApiKeyRecord> {
        as_caller!(self, |c| self.service.apikey_revoke(c, id))
    }

    fn audit_export<'a>(
        &'a self,
        filter: ExportFilter,
        format: ExportFormat,
        sink: &'a mut (dyn ExportSink + Send),
    ) -> ClientFuture<'a, Manifest> {
        Box::pin(async move {
            let caller = &self.actor.for_request();
            let mut stream = self
                .service
                .audit_export_begin(caller, filter, format)
                .await?;
            while let Some(chunk) = stream
                .next_chunk()
                .await
                .map_err(crate::ServiceError::from)?
            {
                sink.write(&chunk, stream.tally.rows)
                    .map_err(|e| ClientError::Input(format!("cannot write the export: {e}")))?;
            }
            Ok(self.service.audit_export_finish(caller, stream).await?)
        })
    }

    fn audit_pubkey(&self) -> ClientFuture<'_, String> {
        as_caller!(self, |c| self.service.audit_pubkey(c))
    }

    fn audit_archive(&self) -> ClientFuture<'_, crate::ArchiveReport> {
        as_caller!(self, |c| self.service.audit_archive(c))
    }

    fn audit_quarantine(&self, from: i64) -> ClientFuture<'_, crate::QuarantineReport> {
        as_caller!(self, |c| self.service.audit_quarantine(c, from))
    }

    fn watch(&self) -> ClientFuture<'_, WatchStream> {
        Box::pin(async move {
            let feed = self.service.watch(&self.actor.for_request()).await?;
            let events = stream::unfold(feed, |mut feed| async move {
                let ev = feed.next().await?;
                Some((ev.map_err(ClientError::from), feed))
            });
            Ok(events.boxed())
        })
    }
}
