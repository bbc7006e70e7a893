//! Who is acting. Every audit event names an actor of one kind (`ActorKind`):
//! - an operator: the OS account behind a request, where it came from, through which
//!   interface (cli, tui), and with which role. Identity comes from the kernel (the process
//!   uid, or the peer credentials of a socket), never from `$USER` or anything a client
//!   claims;
//! - the daemon's own work, by what it was (`scheduler`, `health check`, `alerts`,
//!   `retention`, `revoke retry`, `link expiry`);
//! - a host application, by its service key's name (`service:books-sync`);
//! - a customer's browser (`customer`, with the reconnect link's fingerprint and the
//!   address);
//! - Intuit (`intuit`: webhooks and the Disconnect URL).
//!
//! Only an operator has a role. See `Actor`'s doc for the constructors.

use serde::{Deserialize, Serialize};
use std::ffi::CStr;
use std::fmt;

/// The operators' front ends: the only interfaces a person acts through. The daemon's own
/// work, host applications, customers' browsers and Intuit are not operators and have no
/// interface of this kind (see `ActorKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    Cli,
    Tui,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Cli => "cli",
            Interface::Tui => "tui",
        }
    }
}

/// What a caller may do. Ordered only for display; permissions are checked by `allows`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An account no role is mapped to: allowed nothing.
    Unmapped,
    Viewer,
    Auditor,
    Support,
    Admin,
}

/// Every operation a role can be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    ViewConnections,
    ReadAudit,
    Refresh,
    /// Acting on many connections at once (`refresh --all`, `--due`, `revoke --where`).
    BulkActions,
    Verify,
    ReconnectLink,
    Revoke,
    Import,
    ManageKeys,
    /// Writing a support bundle for an Intuit ticket about one connection.
    SupportBundle,
    /// Moving rows that block the audit chain into quarantine (`audit quarantine`).
    RepairAudit,
    /// Backing the database up and drilling a restore (`db backup`, `db restore-check`).
    ManageDatabase,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Unmapped => "unmapped",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
            Role::Support => "support",
            Role::Admin => "admin",
        }
    }

    pub fn allows(self, p: Permission) -> bool {
        use Permission::*;
        match self {
            Role::Admin => true,
            Role::Unmapped => false,
            Role::Viewer => matches!(p, ViewConnections),
            Role::Auditor => matches!(p, ViewConnections | ReadAudit),
            Role::Support => matches!(
                p,
                ViewConnections | Refresh | Verify | ReconnectLink | SupportBundle
            ),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A person at the console or the CLI: the OS account the kernel names, where the session
/// came from, the front end, and the role `[roles]` maps the account to. Only operators
/// have a role; only their requests are checked against one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    pub account: String,
    pub uid: u32,
    /// The SSH client address from `SSH_CONNECTION`, when the session came over SSH.
    pub ssh_client: Option<String>,
    pub interface: Interface,
    pub role: Role,
}

/// The daemon's own work, named by what it was, never by the OS account it runs as: an
/// auditor reading "root [admin]" would take a timer for an administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DaemonTask {
    /// Scheduled refreshes (and the lease-holding around them).
    Scheduler,
    /// Periodic `verify` of live connections, and recording dead ones.
    HealthCheck,
    /// Delivering alerts to the configured webhooks.
    Alerts,
    /// `[retention] audit_days`: archiving old events.
    Retention,
    /// Retrying revokes Intuit had not confirmed.
    RevokeRetry,
    /// Closing reconnect links whose time ran out.
    LinkExpiry,
}

impl DaemonTask {
    pub const ALL: &'static [DaemonTask] = &[
        DaemonTask::Scheduler,
        DaemonTask::HealthCheck,
        DaemonTask::Alerts,
        DaemonTask::Retention,
        DaemonTask::RevokeRetry,
        DaemonTask::LinkExpiry,
    ];

    /// The task in words, as the log stores it (`actor_kind` and `actor_account`).
    pub fn as_str(self) -> &'static str {
        match self {
            DaemonTask::Scheduler => "scheduler",
            DaemonTask::HealthCheck => "health check",
            DaemonTask::Alerts => "alerts",
            DaemonTask::Retention => "retention",
            DaemonTask::RevokeRetry => "revoke retry",
            DaemonTask::LinkExpiry => "link expiry",
        }
    }

    pub fn kind(self) -> Kind {
        match self {
            DaemonTask::Scheduler => Kind::Scheduler,
            DaemonTask::HealthCheck => Kind::HealthCheck,
            DaemonTask::Alerts => Kind::Alerts,
            DaemonTask::Retention => Kind::Retention,
            DaemonTask::RevokeRetry => Kind::RevokeRetry,
            DaemonTask::LinkExpiry => Kind::LinkExpiry,
        }
    }
}

/// Who or what acted. Each kind carries exactly what is true of it: only an operator has
/// an account, a uid and a role, so an automatic or anonymous act cannot be recorded with
/// an operator's role.
/// Serialisable so an event held aside (`audit_held`) keeps its actor whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ActorKind {
    Operator(Operator),
    /// The daemon acting on its own, by what it was doing.
    Daemon(DaemonTask),
    /// A host application, by its service key's name (`service:NAME`); `None` when the
    /// request presented no key or one the daemon does not know.
    Service {
        key_name: Option<String>,
    },
    /// A customer's browser on the public listener: the keyed fingerprint of the reconnect
    /// link it came through (none when the link is unknown) and its address.
    Customer {
        link_fp: Option<String>,
        address: String,
    },
    /// Intuit itself: webhooks and its Disconnect URL.
    Intuit,
}

/// The kind of an actor, without its particulars: what the audit catalogue lists per
/// action and what the log stores in `actor_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Operator,
    Scheduler,
    HealthCheck,
    Alerts,
    Retention,
    RevokeRetry,
    LinkExpiry,
    Service,
    Customer,
    Intuit,
}

impl Kind {
    pub const ALL: &'static [Kind] = &[
        Kind::Operator,
        Kind::Scheduler,
        Kind::HealthCheck,
        Kind::Alerts,
        Kind::Retention,
        Kind::RevokeRetry,
        Kind::LinkExpiry,
        Kind::Service,
        Kind::Customer,
        Kind::Intuit,
    ];

    /// The word stored in the log's `actor_kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Operator => "operator",
            Kind::Scheduler => "scheduler",
            Kind::HealthCheck => "health check",
            Kind::Alerts => "alerts",
            Kind::Retention => "retention",
            Kind::RevokeRetry => "revoke retry",
            Kind::LinkExpiry => "link expiry",
            Kind::Service => "service",
            Kind::Customer => "customer",
            Kind::Intuit => "intuit",
        }
    }

    pub fn parse(word: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == word)
    }

    /// Whether the daemon did it on its own.
    pub fn is_daemon(self) -> bool {
        matches!(
            self,
            Kind::Scheduler
                | Kind::HealthCheck
                | Kind::Alerts
                | Kind::Retention
                | Kind::RevokeRetry
                | Kind::LinkExpiry
        )
    }

    /// The door the act came through, as the log's `interface` column holds it for actors
    /// that are not operators (an operator's is `cli` or `tui`): the daemon's own work is
    /// `scheduler`, a host application's `token_api`, a browser's and Intuit's `callback`
    /// (the public listener).
    fn interface(self) -> &'static str {
        match self {
            Kind::Operator => "",
            Kind::Service => "token_api",
            Kind::Customer | Kind::Intuit => "callback",
            _ => "scheduler",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The uid stored for an actor that is not an OS account (the column is NOT NULL): no
/// account has it, so it cannot be read as the daemon's own or anyone's.
pub const NO_UID: i64 = -1;

/// How an actor is stored in an audit row. `role` is empty for every actor that is not an
/// operator: no role was involved, and none is claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredActor {
    pub kind: Kind,
    pub account: String,
    pub uid: i64,
    pub from: Option<String>,
    pub interface: String,
    pub role: String,
}

/// An actor and the request it is acting in.
///
/// Constructors, for code that records events:
/// - an operator: `Actor::current_process(Interface::Cli, Role::Admin)` (in-process CLI),
///   or `Actor::operator(Operator { .. })` (the socket's peer);
/// - the daemon's own work: `Actor::daemon(DaemonTask::Scheduler)` (`HealthCheck`,
///   `Alerts`, `Retention`, `RevokeRetry`, `LinkExpiry`);
/// - a host application: `Actor::service(Some("books-sync"))`;
/// - a customer's browser: `Actor::customer(Some(link_fp), address)`;
/// - Intuit (webhooks, the Disconnect URL): `Actor::intuit()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub kind: ActorKind,
    /// Ties together the audit events one request caused (a bulk refresh, say).
    pub request_id: Option<String>,
}

impl Actor {
    /// The account running this process, as the kernel knows it, as an operator: the CLI
    /// acting in process, on the operator's behalf.
    pub fn current_process(interface: Interface, role: Role) -> Actor {
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        Actor::operator(Operator {
            account: account_name(uid),
            uid,
            ssh_client: ssh_client_address(std::env::var("SSH_CONNECTION").ok().as_deref()),
            interface,
            role,
        })
    }

    /// A person, with a fresh request id.
    pub fn operator(op: Operator) -> Actor {
        Actor::fresh(ActorKind::Operator(op))
    }

    /// The daemon's own work.
    pub fn daemon(task: DaemonTask) -> Actor {
        Actor::fresh(ActorKind::Daemon(task))
    }

    /// A host application through the token API, by its key's name.
    pub fn service(key_name: Option<&str>) -> Actor {
        Actor::fresh(ActorKind::Service {
            key_name: key_name.map(str::to_string),
        })
    }

    /// A customer's browser: the fingerprint of the reconnect link (when known) and the
    /// address it came from.
    pub fn customer(link_fp: Option<String>, address: impl Into<String>) -> Actor {
        Actor::fresh(ActorKind::Customer {
            link_fp,
            address: address.into(),
        })
    }

    /// Intuit: webhooks and its Disconnect URL.
    pub fn intuit() -> Actor {
        Actor::fresh(ActorKind::Intuit)
    }

    fn fresh(kind: ActorKind) -> Actor {
        Actor {
            kind,
            request_id: Some(new_request_id()),
        }
    }

    /// The same caller, for a new request.
    pub fn for_request(&self) -> Actor {
        Actor {
            request_id: Some(new_request_id()),
            ..self.clone()
        }
    }

    /// The same actor, in no request.
    pub fn without_request(&self) -> Actor {
        Actor {
            request_id: None,
            ..self.clone()
        }
    }

    /// The operator, when a person acted.
    pub fn as_operator(&self) -> Option<&Operator> {
        match &self.kind {
            ActorKind::Operator(op) => Some(op),
            _ => None,
        }
    }

    /// The operator's role; no other actor has one.
    pub fn role(&self) -> Option<Role> {
        self.as_operator().map(|op| op.role)
    }

    /// Whether this actor may do `p`. Roles are an operator's: nothing else is granted
    /// anything by them (the daemon's own work, the token API and the public listener never
    /// ask; they are what they are by the code path that made them).
    pub fn allows(&self, p: Permission) -> bool {
        self.role().is_some_and(|r| r.allows(p))
    }

    pub fn kind(&self) -> Kind {
        match &self.kind {
            ActorKind::Operator(_) => Kind::Operator,
            ActorKind::Daemon(t) => t.kind(),
            ActorKind::Service { .. } => Kind::Service,
            ActorKind::Customer { .. } => Kind::Customer,
            ActorKind::Intuit => Kind::Intuit,
        }
    }

    /// The actor's name: an operator's account, the daemon's task, `service:NAME`,
    /// `customer` or `intuit`. What the log stores in `actor_account`.
    pub fn name(&self) -> String {
        match &self.kind {
            ActorKind::Operator(op) => op.account.clone(),
            ActorKind::Daemon(t) => t.as_str().to_string(),
            ActorKind::Service { key_name } => {
                format!("service:{}", key_name.as_deref().unwrap_or("unknown"))
            }
            ActorKind::Customer { link_fp, .. } => match link_fp {
                Some(fp) => format!("customer:{fp}"),
                None => "customer".to_string(),
            },
            ActorKind::Intuit => "intuit".to_string(),
        }
    }

    /// How the actor is stored in an audit row (see `StoredActor`).
    pub fn stored(&self) -> StoredActor {
        let kind = self.kind();
        match &self.kind {
            ActorKind::Operator(op) => StoredActor {
                kind,
                account: op.account.clone(),
                uid: i64::from(op.uid),
                from: op.ssh_client.clone(),
                interface: op.interface.as_str().to_string(),
                role: op.role.as_str().to_string(),
            },
            other => StoredActor {
                kind,
                account: self.name(),
                uid: NO_UID,
                from: match other {
                    ActorKind::Customer { address, .. } => Some(address.clone()),
                    _ => None,
                },
                interface: kind.interface().to_string(),
                role: String::new(),
            },
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ActorKind::Operator(op) => write!(f, "{} [{}]", op.account, op.role),
            _ => f.write_str(&self.name()),
        }
    }
}

/// A short random id: 64 bits from the OS's CSPRNG, in hex.
pub fn new_request_id() -> String {
    let mut b = [0u8; 8];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut b);
    crate::vault::hex(&b)
}

/// `SSH_CONNECTION` is "client_ip client_port server_ip server_port".
pub fn ssh_client_address(value: Option<&str>) -> Option<String> {
    let first = value?.split_whitespace().next()?;
    first
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}

/// The account name for a uid from the system's user database, or `uid:N` if it has none.
pub fn account_name(uid: u32) -> String {
    let mut buf = vec![0 as libc::c_char; 4096];
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: all pointers point at live, correctly sized storage owned by this frame;
    // getpwuid_r writes only within `buf` and sets `result` to `&pwd` or null.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
        // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) };
        if let Ok(s) = name.to_str() {
            return s.to_string();
        }
    }
    format!("uid:{uid}")
}

/// The names of every group an account belongs to (primary included), from the system's
/// group database.
pub fn groups_of(account: &str, primary_gid: u32) -> Vec<String> {
    let Ok(name) = std::ffi::CString::new(account) else {
        return Vec::new();
    };
    let mut n: libc::c_int = 64;
    let mut gids: Vec<libc::gid_t> = vec![0; n as usize];
    loop {
        let mut count = n;
        // SAFETY: `name` is NUL-terminated; `gids` has room for `count` entries and
        // getgrouplist writes at most that many, updating `count`.
        let rc = unsafe {
            libc::getgrouplist(name.as_ptr(), primary_gid, gids.as_mut_ptr(), &mut count)
        };
        if rc >= 0 {
            gids.truncate(count.max(0) as usize);
            break;
        }
        if count <= n || count > 65_536 {
            gids.truncate(0);
            gids.push(primary_gid);
            break;
        }
        n = count;
        gids = vec![0; n as usize];
    }
    gids.into_iter().filter_map(group_name).collect()
}

fn group_name(gid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as for getpwuid_r: all storage is owned here and correctly sized.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut result) };
    if rc != 0 || result.is_null() || grp.gr_name.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points at a NUL-terminated string inside `buf`.
    unsafe { CStr::from_ptr(grp.gr_name) }
        .to_str()
        .ok()
        .map(str::to_string)
}

/// A group's id by name.
pub fn group_id(name: &str) -> Option<u32> {
    let cname = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: as above.
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_connection_gives_the_client_address() {
        assert_eq!(
            ssh_client_address(Some("203.0.113.7 52100 10.0.0.2 22")).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(ssh_client_address(Some("garbage")), None);
        assert_eq!(ssh_client_address(None), None);
    }

    #[test]
    fn root_has_a_name_and_groups() {
        assert_eq!(account_name(0), "root");
        assert!(groups_of("root", 0).contains(&"root".to_string()));
        assert_eq!(group_id("root"), Some(0));
    }

    #[test]
    fn roles_follow_the_table() {
        use Permission::*;
        assert!(Role::Viewer.allows(ViewConnections) && !Role::Viewer.allows(ReadAudit));
        assert!(Role::Auditor.allows(ReadAudit) && !Role::Auditor.allows(Refresh));
        assert!(Role::Support.allows(Refresh) && Role::Support.allows(ReconnectLink));
        assert!(!Role::Support.allows(Revoke) && !Role::Support.allows(Import));
        assert!(Role::Admin.allows(ManageKeys));
    }
}
