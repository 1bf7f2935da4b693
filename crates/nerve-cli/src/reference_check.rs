//! `nerve reference-check FILE`: prints the worst error per case and fails outside tolerance.

use std::path::Path;
use std::process::ExitCode;

use nerve::snntorch_check::{check_file, FORWARD_TOL, GRAD_FLOOR, GRAD_TOL};

/// Runs the check and prints one line per case.
pub fn run(file: &Path) -> nerve::Result<ExitCode> {
    let reports = check_file(file)?;
    println!(
        "{:<4} {:>11} {:>11} {:>5}  case (forward tol {FORWARD_TOL:e} abs, grad tol {GRAD_TOL:e} rel \
         or {GRAD_FLOOR:e} abs)",
        "ok", "fwd err", "grad err", "flips"
    );
    let mut failed = 0;
    for r in &reports {
        let ok = r.passed();
        failed += usize::from(!ok);
        println!(
            "{:<4} {:>11.3e} {:>11.3e} {:>5}  {}{}",
            if ok { "pass" } else { "FAIL" },
            r.forward.0,
            r.grad.0,
            r.spike_flips,
            r.label,
            r.error
                .as_ref()
                .map(|e| format!("  [{e}]"))
                .unwrap_or_default()
        );
    }
    println!("{} passed, {} failed", reports.len() - failed, failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
