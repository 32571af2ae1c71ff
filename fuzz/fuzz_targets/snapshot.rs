#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| aa_fuzz_entries::snapshot(data));
