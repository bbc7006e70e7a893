//! A blocked audit chain, contained: credential actions that reach Intuit are refused
//! before they start (naming the damage and the verb that repairs it), and an admin
//! repairs the chain with `audit quarantine --from SEQ` (see `audit::quarantine`).

use super::{Result, Service, ServiceError};
use qbo_core::identity::{Actor, Permission};
use qbo_store::audit::quarantine::QuarantineReport;
use qbo_store::audit::Action;

impl Service {
    /// `audit quarantine --from SEQ` (admin): moves the rows stored past the chain head to
    /// `audit_quarantine` and records the `chain repaired` event. A SEQ that does not name
    /// exactly those rows is refused as bad input, and nothing changes.
    pub async fn audit_quarantine(&self, caller: &Actor, from: i64) -> Result<QuarantineReport> {
        if from < 1 {
            return Err(ServiceError::Input(format!(
                "--from {from} is not a sequence number: give the first bad sequence number `qbo-console audit verify` names (1 or more)"
            )));
        }
        self.authorize(caller, Permission::RepairAudit, Action::ChainRepaired)
            .await?;
        let now = self.engine.clock.now();
        let mut tx = self.store().begin().await?;
        match tx.quarantine_past_head(from, caller, now).await? {
            Err(refused) => {
                tx.rollback().await?;
                Err(ServiceError::Input(refused.0))
            }
            Ok((report, _)) => {
                // The repair records its own event inside `quarantine_past_head`.
                self.engine.commit_audited(tx, &[]).await?;
                tracing::warn!(
                    removed = report.removed,
                    from = report.from_seq,
                    through = report.through_seq,
                    account = %qbo_core::text::Safe(&caller.name()),
                    "audit chain repaired: rows stored past its head were moved to audit_quarantine; the log takes writes again"
                );
                Ok(report)
            }
        }
    }

    /// Refuses an action that would reach Intuit while its outcome could not be recorded:
    /// a refresh token spent then would have its answer thrown away. The error names the
    /// damage and the verb that repairs it.
    pub(super) async fn ensure_audit_appendable(&self) -> Result<()> {
        self.store().audit_appendable().await?;
        Ok(())
    }
}
