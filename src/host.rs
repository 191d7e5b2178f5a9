//! What the machine says about itself: whether a process runs, the host's name, its memory.
//!
//! Why through these calls: claims are taken over when their process has died, and job
//! memory is bounded by the machine's. Reading `/proc` answers only on Linux (on macOS every
//! pid looked alive, so a crashed run's claims were never taken over); `kill(pid, 0)` and
//! `gethostname` (POSIX, through nix's safe wrappers) and sysinfo's memory total answer on
//! every platform microcal runs on.

/// Whether a process with this id runs on this machine; `None` where the platform cannot
/// tell (callers then judge a claim by its age).
pub fn process_alive(pid: u32) -> Option<bool> {
    #[cfg(unix)]
    {
        use nix::errno::Errno;
        use nix::sys::signal::kill;
        use nix::unistd::Pid;
        let Ok(pid) = i32::try_from(pid) else {
            return Some(false);
        };
        if pid <= 0 {
            return Some(false);
        }
        match kill(Pid::from_raw(pid), None) {
            Ok(()) => Some(true),
            // It exists, but belongs to another user.
            Err(Errno::EPERM) => Some(true),
            Err(Errno::ESRCH) => Some(false),
            Err(_) => None,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        None
    }
}

/// This machine's host name, or "unknown-host" where it has none.
pub fn host_name() -> String {
    #[cfg(unix)]
    {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_string())
    }
    #[cfg(not(unix))]
    {
        std::env::var("COMPUTERNAME").unwrap_or_else(|_| "unknown-host".to_string())
    }
}

/// The machine's physical memory in bytes, where the OS tells it.
pub fn physical_memory() -> Option<u64> {
    let mut system = sysinfo::System::new();
    system.refresh_memory();
    Some(system.total_memory()).filter(|&m| m > 0)
}

/// The machine a row was computed on, as its processor and core count say it
/// ("AMD EPYC 9B14, 2 cores"): where a time or a SIMD path came from. Read once.
pub fn machine() -> &'static str {
    static MACHINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    MACHINE.get_or_init(|| {
        use sysinfo::{CpuRefreshKind, RefreshKind, System};
        let system =
            System::new_with_specifics(RefreshKind::nothing().with_cpu(CpuRefreshKind::nothing()));
        let brand = system
            .cpus()
            .first()
            .map(|c| c.brand().trim().to_string())
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        format!("{brand}, {cores} cores")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_alive_until_it_is_reaped() {
        assert_eq!(process_alive(std::process::id()), Some(true));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert_eq!(process_alive(pid), Some(true));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(process_alive(pid), Some(false));
        assert_eq!(process_alive(u32::MAX - 1), Some(false));
        assert_eq!(process_alive(0), Some(false));
    }

    #[test]
    fn the_host_has_a_name_and_memory() {
        let name = host_name();
        assert!(!name.is_empty() && name != "unknown-host" && !name.contains('\n'));
        let expected = std::process::Command::new("hostname").output().unwrap();
        assert_eq!(name, String::from_utf8_lossy(&expected.stdout).trim());
        let memory = physical_memory().unwrap();
        assert!(memory > 256 << 20, "{memory}");
    }
}

#[cfg(test)]
mod portability {
    /// Nothing in the program reads `/proc`, which only Linux has.
    #[test]
    fn no_source_file_reads_proc() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut stack = vec![root.join("src")];
        let mut read = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    assert!(
                        !text.contains(&['"', '/', 'p', 'r', 'o', 'c'].iter().collect::<String>()),
                        "{}",
                        path.display()
                    );
                    read += 1;
                }
            }
        }
        assert!(read > 50, "{read} files");
    }
}
