//! The 1-bit model file reader (`onebit_core::format`): any bytes give a model
//! or an error, never a panic; an accepted model writes back and reads back
//! to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use onebit_core::format::OneBitModel;

fuzz_target!(|data: &[u8]| {
    match OneBitModel::from_bytes(data) {
        Ok(model) => {
            let _ = model.summary(data.len() as u64);
            let bytes = model.to_bytes().expect("a model the reader accepts can be written");
            let back = OneBitModel::from_bytes(&bytes).expect("what the writer writes, the reader reads");
            assert_eq!(back, model, "a read model written and read again changed");
        }
        Err(problem) => assert!(!problem.to_string().is_empty()),
    }
});
