//! Returning memory to the operating system after a (re)load.
//!
//! Loading builds large temporary structures (the database walk, the record index, the old
//! snapshot during a reload), several of them on helper threads with their own malloc arenas.
//! glibc keeps freed memory in those arenas, so without a trim a server would carry its load
//! peak as resident memory for the rest of its life.

/// Hands freed heap memory back to the kernel (glibc only; a no-op elsewhere).
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code, reason = "malloc_trim is a C call")]
    // SAFETY: malloc_trim only releases free memory held by the allocator; it takes no
    // pointers and is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
