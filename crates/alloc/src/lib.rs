//! The process allocator of the `tracehound` binary and of the benchmarks, so that both run with
//! the same one: mimalloc (glibc malloc took 45% of EVM ingest's CPU), set up by [`configure`].
//!
//! Depending on this crate makes mimalloc the global allocator; call [`configure`] first thing in
//! `main`.

/// mimalloc for every allocation of the process.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (v3 `mi_option_e`; its default, 1000 ms, is tested).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets up memory for long ingest runs. Measured on EVM ingest (BENCHMARKS.md):
/// * freed memory stays in the process: by default mimalloc hands it back to the OS after a
///   delay, and the kernel zeroes it again when it is reused (a third of the CPU);
/// * no transparent huge pages: mimalloc asks for them, and the first touch of a 2 MiB page
///   costs five times that of the same memory in 4 KiB pages here (0.69 s against 0.14 s for
///   300 MiB), which took a sixth of the CPU.
pub fn configure() {
    // SAFETY: setting an option is allowed at any time; it only changes purging.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process, read when a page is faulted
    // in (so it also covers the arena mimalloc reserved before `main`); a kernel without it
    // refuses the call, which changes nothing.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Whether transparent huge pages are off for this process (after [`configure`], on Linux).
pub fn huge_pages_disabled() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: reads a flag of this process.
    return unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) } == 1;
    #[cfg(not(target_os = "linux"))]
    false
}

/// Gives the memory mimalloc keeps after it is freed back to the system, now: purging is turned
/// on for the moment of a forced collection, then off again ([`configure`] keeps freed memory for
/// reuse). Stages that work within a memory budget call it between phases, through
/// `tracehound_memory::release_free_memory`.
pub fn release() {
    // SAFETY: options may be set at any time; `mi_collect` may be called from any thread.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_collect(true);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
    }
}

#[cfg(test)]
mod tests {
    /// The option number is mimalloc's purge delay: its default, 1000 ms, comes back; after
    /// `configure` it is -1, and huge pages are off.
    #[test]
    fn configure_sets_purge_delay_and_turns_huge_pages_off() {
        // SAFETY: reading an option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) }, 1000);
        assert!(!super::huge_pages_disabled());
        super::configure();
        // SAFETY: reading an option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) }, -1);
        #[cfg(target_os = "linux")]
        assert!(super::huge_pages_disabled());
        // Giving freed memory back leaves purging off again.
        let kept = vec![7u8; 32 << 20];
        drop(std::hint::black_box(kept));
        super::release();
        // SAFETY: reading an option.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) }, -1);
    }
}
