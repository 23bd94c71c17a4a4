//! CSV bytes → build_mmdb → maxminddb and GeoDb; see gslbd_fuzz::geocsv.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gslbd_fuzz::geocsv(data);
});
