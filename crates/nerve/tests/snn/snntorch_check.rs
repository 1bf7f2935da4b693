//! Replays the snnTorch reference vectors in `shared/reference/`.

use nerve::snntorch_check::check_file;

#[test]
fn every_snntorch_reference_case_matches() {
    let Some(shared) = crate::common::shared_dir() else {
        return;
    };
    let file = shared.join("reference/snntorch-reference.json");
    let reports = check_file(&file).expect("reference file loads");
    assert_eq!(reports.len(), 53, "the shared file holds 53 cases");
    let failures: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| {
            format!(
                "{}: fwd {:.2e} ({}), grad {:.2e} ({}), flips {}{}",
                r.label,
                r.forward.0,
                r.forward.1,
                r.grad.0,
                r.grad.1,
                r.spike_flips,
                r.error
                    .as_deref()
                    .map(|e| format!(" [{e}]"))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
