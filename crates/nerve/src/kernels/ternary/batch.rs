//! The batched GEMV: N activation vectors against one matrix, each band of weights streamed
//! from memory once and reused from cache for the other vectors.

use rayon::prelude::*;

use super::{Kernel, KernelInput, Line, QuantizedActivations, TernaryMatrix, BAND_ROWS};

impl TernaryMatrix {
    /// For each of the N activation vectors `xs[s]`, `ys[s * rows + r] = Σ_c sign(r, c) ·
    /// xs[s][c]` (`ys` is `[N, rows]`), with the kernel of [`Kernel::detect`]. Parallel over
    /// bands of rows in the current rayon pool; within a band the weights come from memory for
    /// the first vector and from cache for the others.
    ///
    /// # Panics
    /// If an `xs[s].len() != cols` or `ys.len() != xs.len() * rows`.
    pub fn gemv_batch(&self, xs: &[&QuantizedActivations], ys: &mut [i32]) {
        self.gemv_batch_with(Kernel::detect(), xs, ys)
    }

    /// [`gemv_batch`](Self::gemv_batch) with a chosen kernel; a kernel this CPU lacks, or one
    /// that reads another layout, falls back to the portable kernel of the layout.
    ///
    /// # Panics
    /// As [`gemv_batch`](Self::gemv_batch).
    pub fn gemv_batch_with(&self, kernel: Kernel, xs: &[&QuantizedActivations], ys: &mut [i32]) {
        let n = xs.len();
        assert!(xs.iter().all(|x| x.len() == self.cols), "gemv input length");
        assert_eq!(ys.len(), n * self.rows, "gemv output length");
        if n == 0 {
            return;
        }
        let kernel = self.runnable(kernel);
        let inputs: Vec<_> = xs.iter().map(|x| self.kernel_input(kernel, x)).collect();
        let threads = rayon::current_num_threads();
        let per_task = self.bands.div_ceil(threads * 2).max(1);
        let ranges: Vec<(usize, usize)> = (0..self.bands)
            .step_by(per_task)
            .map(|first| (first, (first + per_task).min(self.bands)))
            .collect();
        let run =
            |&(first, end): &(usize, usize)| self.band_range_batch(kernel, first, end, &inputs);
        let parts: Vec<Vec<i32>> = if threads == 1 || ranges.len() == 1 {
            ranges.iter().map(run).collect()
        } else {
            ranges.par_iter().map(run).collect()
        };
        // Each part is `[band][vector][BAND_ROWS]`; padding rows of the last band are dropped.
        for (&(first, end), part) in ranges.iter().zip(&parts) {
            for b in first..end {
                let r0 = b * BAND_ROWS;
                let len = BAND_ROWS.min(self.rows - r0);
                for s in 0..n {
                    let from = ((b - first) * n + s) * BAND_ROWS;
                    ys[s * self.rows + r0..][..len].copy_from_slice(&part[from..from + len]);
                }
            }
        }
    }

    /// The sums of bands `first..end` for every vector, `[band][vector][BAND_ROWS]`.
    fn band_range_batch(
        &self,
        kernel: Kernel,
        first: usize,
        end: usize,
        inputs: &[KernelInput<'_>],
    ) -> Vec<i32> {
        let per_band = self.lines_per_band();
        let all = self.lines();
        let task_end = if end == self.bands {
            usize::MAX as *const Line
        } else {
            all[..end * per_band].as_ptr_range().end
        };
        let mut out = Vec::with_capacity((end - first) * inputs.len() * BAND_ROWS);
        for b in first..end {
            let lines = &all[b * per_band..(b + 1) * per_band];
            for (s, t) in inputs.iter().enumerate() {
                // Only the first vector's pass prefetches: the others find the band in cache.
                let prefetch_end = if s == 0 { task_end } else { lines.as_ptr() };
                out.extend_from_slice(&self.band(kernel, lines, t, prefetch_end));
            }
        }
        out
    }
}
