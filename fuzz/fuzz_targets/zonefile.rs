//! Zone file text → compile_zone_file_text; see gslbd_fuzz::zonefile.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gslbd_fuzz::zonefile(data);
});
