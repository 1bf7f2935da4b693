//! The plain definition of the ternary GEMV, one element at a time, that every kernel is
//! tested against with exact integer equality.

use super::TernaryMatrix;

impl TernaryMatrix {
    /// The plain definition, one element at a time on one thread:
    /// `y[r] = Σ_c sign(r, c) · x[c]`.
    ///
    /// # Panics
    /// If `x.len() != cols` or `y.len() != rows`.
    pub fn gemv_reference(&self, x: &[i8], y: &mut [i32]) {
        assert_eq!(x.len(), self.cols, "gemv input length");
        assert_eq!(y.len(), self.rows, "gemv output length");
        for (r, out) in y.iter_mut().enumerate() {
            let mut acc = 0i32;
            for (c, &v) in x.iter().enumerate() {
                match self.sign(r, c) {
                    1 => acc += v as i32,
                    -1 => acc -= v as i32,
                    _ => {}
                }
            }
            *out = acc;
        }
    }
}
