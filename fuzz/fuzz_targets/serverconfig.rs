//! Server config text → parse_server_config; see gslbd_fuzz::serverconfig.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gslbd_fuzz::serverconfig(data);
});
