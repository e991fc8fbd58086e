//! The seccomp filter of a sandboxed process: everything is allowed but the
//! system calls a tool has no business making, which fail with `EPERM`.
//!
//! Denied: debugging other processes (ptrace, process_vm_*), io_uring (it
//! bypasses this filter), the kernel keyring, mounts and root changes,
//! namespace changes (unshare, setns, clone with CLONE_NEW*), loading kernel
//! code or BPF, perf, userfaultfd, host state (host and domain names, the
//! clocks, the kernel log, I/O ports, fanotify, quotas, the new mount API,
//! real-time scheduling), making device nodes (mknod of a character or
//! block device; FIFOs and sockets are fine), pushing input into a
//! terminal (TIOCSTI, TIOCLINUX), and, unless the tool is granted the
//! network, every socket but AF_UNIX. `clone3` returns `ENOSYS`, since its
//! flags live in memory a filter cannot read: libc then falls back to
//! `clone`, whose flags are checked.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_userfaultfd,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_acct,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_reboot,
    libc::SYS_syslog,
    libc::SYS_fspick,
    libc::SYS_fsconfig,
    libc::SYS_mount_setattr,
    libc::SYS_pidfd_getfd,
    libc::SYS_kcmp,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_fanotify_init,
    libc::SYS_quotactl,
    libc::SYS_vhangup,
    libc::SYS_sched_setattr,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
];

/// Scheduling policies that take the CPU from everyone (SCHED_FIFO, RR,
/// DEADLINE), with and without SCHED_RESET_ON_FORK.
const REALTIME: &[u64] = &[1, 2, 6, 0x4000_0001, 0x4000_0002, 0x4000_0006];

const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| format!("seccomp: {e}"))
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value)
        .map_err(|e| format!("seccomp: {e}"))
}

fn cond32(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
        .map_err(|e| format!("seccomp: {e}"))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| format!("seccomp: {e}"))
}

/// The filters, in the order they are installed.
pub(crate) fn filters(network: bool) -> Result<Vec<BpfProgram>, String> {
    let arch = arch()?;
    let mut denied: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, Vec::new())).collect();
    // clone(flags, ...) with any namespace flag: one rule per flag (rules
    // of a syscall are alternatives).
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&f| rule(vec![cond(0, SeccompCmpOp::MaskedEq(f), f)?]))
        .collect::<Result<Vec<_>, _>>()?;
    denied.insert(libc::SYS_clone, clone_rules);
    // mknod(path, mode, dev) and mknodat(dirfd, path, mode, dev) of a
    // character or block device.
    let device_rules = |arg: u8| -> Result<Vec<SeccompRule>, String> {
        [libc::S_IFCHR, libc::S_IFBLK]
            .iter()
            .map(|&kind| {
                rule(vec![cond32(
                    arg,
                    SeccompCmpOp::MaskedEq(libc::S_IFMT as u64),
                    kind as u64,
                )?])
            })
            .collect()
    };
    #[cfg(target_arch = "x86_64")]
    denied.insert(libc::SYS_mknod, device_rules(1)?);
    denied.insert(libc::SYS_mknodat, device_rules(2)?);
    denied.insert(
        libc::SYS_ioctl,
        vec![
            rule(vec![cond32(1, SeccompCmpOp::Eq, libc::TIOCSTI)?])?,
            rule(vec![cond32(1, SeccompCmpOp::Eq, libc::TIOCLINUX)?])?,
        ],
    );
    denied.insert(
        libc::SYS_sched_setscheduler,
        REALTIME
            .iter()
            .map(|&p| rule(vec![cond32(1, SeccompCmpOp::Eq, p)?]))
            .collect::<Result<Vec<_>, _>>()?,
    );
    if !network {
        denied.insert(
            libc::SYS_socket,
            vec![rule(vec![cond(
                0,
                SeccompCmpOp::Ne,
                libc::AF_UNIX as u64,
            )?])?],
        );
    }
    let eperm = SeccompFilter::new(
        denied,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    let enosys = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| format!("seccomp: {e}"))?;
    [eperm, enosys]
        .into_iter()
        .map(|f| BpfProgram::try_from(f).map_err(|e| format!("seccomp: {e}")))
        .collect()
}

/// Installs the filters on the calling thread (inherited across exec).
/// Requires no_new_privs, which Landlock's restriction already set; set
/// again here so the order of the two does not matter.
pub(crate) fn apply(network: bool) -> Result<(), String> {
    // SAFETY: prctl with constant arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    for f in filters(network)? {
        seccompiler::apply_filter(&f).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn filters_compile_for_this_architecture() {
        assert_eq!(super::filters(false).unwrap().len(), 2);
        assert_eq!(super::filters(true).unwrap().len(), 2);
    }
}
