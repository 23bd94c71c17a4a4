//! Request bytes → GslbHandler → response bytes, over UDP and TCP; see gslbd_fuzz::request.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gslbd_fuzz::request(data);
});
