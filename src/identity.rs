//! Who is acting: the OS account behind a request, where it came from, through which
//! interface, and with which role. Identity comes from the kernel (the process uid, or the
//! peer credentials of a socket), never from `$USER` or anything a client claims.

use serde::{Deserialize, Serialize};
use std::ffi::CStr;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interface {
    Cli,
    Tui,
    Scheduler,
    Callback,
    TokenApi,
}

impl Interface {
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Cli => "cli",
            Interface::Tui => "tui",
            Interface::Scheduler => "scheduler",
            Interface::Callback => "callback",
            Interface::TokenApi => "token_api",
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub account: String,
    pub uid: u32,
    /// The SSH client address from `SSH_CONNECTION`, when the session came over SSH.
    pub ssh_client: Option<String>,
    pub interface: Interface,
    pub role: Role,
    /// Ties together the audit events one request caused (a bulk refresh, say).
    #[serde(default)]
    pub request_id: Option<String>,
}

impl Actor {
    /// The account running this process, as the kernel knows it.
    pub fn current_process(interface: Interface, role: Role) -> Actor {
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        Actor {
            account: account_name(uid),
            uid,
            ssh_client: ssh_client_address(std::env::var("SSH_CONNECTION").ok().as_deref()),
            interface,
            role,
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
