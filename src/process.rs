//! The process and its supervisor: readiness and reload notifications to systemd
//! (`Type=notify`, through `$NOTIFY_SOCKET`; nothing happens without one), and dropping root
//! once every socket is bound (`user = "gslbd"`).

use std::io;

/// Tells the service manager that gslbd is ready: zones loaded, first probe round done, every
/// socket bound. `status` is the one-line status `systemctl status` shows.
pub fn notify_ready(status: &str) {
    let _ = sd_notify::notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

/// Tells the service manager a reload has started (followed by [`notify_ready`] when it ends).
pub fn notify_reloading() {
    let mut states = vec![sd_notify::NotifyState::Reloading];
    // systemd ≥ 253 wants the monotonic time with RELOADING=1.
    if let Ok(t) = sd_notify::NotifyState::monotonic_usec_now() {
        states.push(t);
    }
    let _ = sd_notify::notify(&states);
}

/// Tells the service manager gslbd is stopping.
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// Who the process runs as, from `/proc/self/status`: real, effective, saved and filesystem
/// uids and gids, and the permitted, effective, inheritable and ambient capability sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `Uid:` real, effective, saved, filesystem.
    pub uids: [u32; 4],
    /// `Gid:` real, effective, saved, filesystem.
    pub gids: [u32; 4],
    /// `Groups:` supplementary groups.
    pub groups: Vec<u32>,
    /// `CapPrm`, `CapEff`, `CapInh`, `CapAmb` as bit sets.
    pub caps: [u64; 4],
}

impl Identity {
    /// Reads `/proc/<pid>/task/<tid>/status` (or any `status` file of that format).
    pub fn read(path: &std::path::Path) -> io::Result<Self> {
        let text = std::fs::read_to_string(path)?;
        Ok(Self::parse(&text))
    }

    /// Parses the text of a `status` file; missing fields read as zero.
    pub fn parse(text: &str) -> Self {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or("")
                .trim()
        };
        let ids = |name: &str| {
            let mut out = [0u32; 4];
            for (o, v) in out.iter_mut().zip(field(name).split_whitespace()) {
                *o = v.parse().unwrap_or(u32::MAX);
            }
            out
        };
        let cap = |name: &str| u64::from_str_radix(field(name), 16).unwrap_or(u64::MAX);
        Self {
            uids: ids("Uid:"),
            gids: ids("Gid:"),
            groups: field("Groups:")
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect(),
            caps: [
                cap("CapPrm:"),
                cap("CapEff:"),
                cap("CapInh:"),
                cap("CapAmb:"),
            ],
        }
    }

    /// Nothing of root left: no uid or gid 0 in any slot, no supplementary groups but the
    /// user's own, and no capability in any set.
    pub fn unprivileged(&self) -> bool {
        self.uids.iter().all(|u| *u != 0)
            && self.gids.iter().all(|g| *g != 0)
            && !self.groups.contains(&0)
            && self.caps.iter().all(|c| *c == 0)
    }
}

/// Drops root for `user` (a name or a numeric uid): supplementary groups set to the user's
/// primary group only, then the gid, then the uid (real, effective and saved: there is no way
/// back), then `no_new_privs`. A root process that changes every uid away from 0 loses all its
/// capabilities (permitted, effective and ambient) — glibc applies `setuid`/`setgid` to every
/// thread, so threads started before the drop lose them too. Then checks each thread's
/// `/proc` status and fails unless none has any root identity or capability left.
///
/// Called after every socket is bound. Does nothing but verify when the process is not root
/// and already runs as `user`; refuses when it is neither root nor `user`.
pub fn drop_privileges(user: &str) -> io::Result<Identity> {
    use nix::unistd::{Gid, Uid, User, getuid, setgid, setgroups, setuid};
    let err = |what: &str, e: nix::Error| io::Error::other(format!("{what}: {e}"));
    let found = match user.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(user),
    }
    .map_err(|e| err(&format!("user {user:?}"), e))?
    .ok_or_else(|| io::Error::other(format!("user {user:?} does not exist")))?;
    if found.uid.is_root() {
        return Err(io::Error::other(format!(
            "user {user:?} is root: name an unprivileged user"
        )));
    }
    let me = getuid();
    if me != found.uid {
        if !me.is_root() {
            return Err(io::Error::other(format!(
                "running as uid {me}, not root: cannot become {user:?}"
            )));
        }
        let gid: Gid = found.gid;
        setgroups(&[gid]).map_err(|e| err("setgroups", e))?;
        setgid(gid).map_err(|e| err("setgid", e))?;
        setuid(found.uid).map_err(|e| err("setuid", e))?;
    }
    nix::sys::prctl::set_no_new_privs().map_err(|e| err("no_new_privs", e))?;
    // Every thread, not only this one: identities and capabilities are per thread in Linux.
    let mut last = None;
    for task in std::fs::read_dir("/proc/self/task")? {
        let id = Identity::read(&task?.path().join("status"))?;
        if !id.unprivileged() {
            return Err(io::Error::other(format!(
                "privileges left after dropping to {user:?}: {id:?}"
            )));
        }
        last = Some(id);
    }
    last.ok_or_else(|| io::Error::other("no thread found in /proc/self/task"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_file_is_read_for_identity_and_capabilities() {
        let root = "Name:\tgslbd\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t0 4\n\
                    CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n\
                    CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n";
        let id = Identity::parse(root);
        assert_eq!(id.uids, [0; 4]);
        assert_eq!(id.groups, vec![0, 4]);
        assert_eq!(id.caps[0], 0x1ff_ffff_ffff);
        assert!(!id.unprivileged());
        let dropped = "Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\n\
                       Groups:\t65534\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000000\n\
                       CapEff:\t0000000000000000\nCapAmb:\t0000000000000000\n";
        assert!(Identity::parse(dropped).unprivileged());
        // A saved uid of 0 is a way back to root.
        let saved = dropped.replace("Uid:\t65534\t65534\t65534", "Uid:\t65534\t65534\t0");
        assert!(!Identity::parse(&saved).unprivileged());
        // One capability left is one too many; unreadable fields count as privileged.
        let cap = dropped.replace("CapAmb:\t0000000000000000", "CapAmb:\t0000000000000400");
        assert!(!Identity::parse(&cap).unprivileged());
        assert!(!Identity::parse("").unprivileged());
    }
}
