//! RFC 1035 master file text → gslbd::config::master; see gslbd_fuzz::masterfile.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gslbd_fuzz::masterfile(data);
});
