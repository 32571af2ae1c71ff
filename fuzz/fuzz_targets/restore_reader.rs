#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| aa_fuzz_entries_tar_internal::restore_reader(data));
