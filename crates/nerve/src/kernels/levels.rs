//! Rounding to the nearest of a table of levels, as snnTorch's `state_quant` does it: used by
//! the state quantizer ([`crate::quant::state`]) and inside the fused Leaky kernel.

/// The nearest of `levels` to `x` as `torch.min(|levels - x|)` picks it: `|level - x|` in
/// float32, the first (lower) level on a tie. NaN stays NaN.
pub fn nearest_level(levels: &[f32], x: f32) -> f32 {
    if is_sorted(levels) {
        nearest_sorted(levels, x)
    } else {
        nearest_scan(levels, x)
    }
}

/// Rounds every value to its nearest level, as [`nearest_level`] does one (the table's order is
/// checked once, not per value).
pub fn round_to_levels(levels: &[f32], values: &mut [f32]) {
    if is_sorted(levels) {
        values
            .iter_mut()
            .for_each(|v| *v = nearest_sorted(levels, *v));
    } else {
        values
            .iter_mut()
            .for_each(|v| *v = nearest_scan(levels, *v));
    }
}

fn is_sorted(levels: &[f32]) -> bool {
    levels.windows(2).all(|w| w[0] <= w[1])
}

/// Every level compared, the first minimum kept (any table).
fn nearest_scan(levels: &[f32], x: f32) -> f32 {
    if x.is_nan() || levels.is_empty() {
        return x;
    }
    let mut best = 0;
    for (i, &l) in levels.iter().enumerate() {
        if (l - x).abs() < (levels[best] - x).abs() {
            best = i;
        }
    }
    levels[best]
}

/// A binary search (ascending tables): `|l - x|` falls and then rises along sorted levels, so
/// the minimum is at the first level at or above `x` or the one before it, which wins a tie.
fn nearest_sorted(levels: &[f32], x: f32) -> f32 {
    if x.is_nan() || levels.is_empty() {
        return x;
    }
    let above = levels.partition_point(|&l| l < x);
    if above == 0 {
        return levels[0];
    }
    if above == levels.len() {
        return levels[above - 1];
    }
    let (lo, hi) = (levels[above - 1], levels[above]);
    if (hi - x).abs() < (lo - x).abs() {
        hi
    } else {
        lo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_go_to_the_lower_level_and_the_ends_clamp() {
        let levels = [0.0f32, 1.0, 2.0];
        assert_eq!(nearest_level(&levels, 0.5), 0.0);
        assert_eq!(nearest_level(&levels, 0.5001), 1.0);
        assert_eq!(nearest_level(&levels, -7.0), 0.0);
        assert_eq!(nearest_level(&levels, 9.0), 2.0);
        assert!(nearest_level(&levels, f32::NAN).is_nan());
    }

    #[test]
    fn rounding_a_slice_matches_one_value_at_a_time() {
        for levels in [&[-1.0f32, -0.2, 0.3, 1.1][..], &[0.5, -1.0, 0.0][..]] {
            let mut values: Vec<f32> = (0..200).map(|i| i as f32 / 50.0 - 2.0).collect();
            let want: Vec<f32> = values.iter().map(|&v| nearest_level(levels, v)).collect();
            round_to_levels(levels, &mut values);
            assert_eq!(values, want);
        }
    }

    #[test]
    fn unsorted_tables_take_the_first_nearest() {
        assert_eq!(nearest_level(&[2.0, 0.0, 1.0], 1.4), 1.0);
        assert_eq!(nearest_level(&[2.0, 1.0, 0.0], 0.5), 1.0);
    }
}
