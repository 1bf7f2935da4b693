//! Tests of the packing, the quantisation and every kernel against the reference.

use super::pack::encode;
use super::quantize::{max_abs, round_half_away, round_to_i8};
use super::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn random_signs(rng: &mut StdRng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.random_range(-1i8..=1)).collect()
}

fn random_i8(rng: &mut StdRng, n: usize) -> Vec<i8> {
    (0..n).map(|_| rng.random::<i8>()).collect()
}

#[test]
fn ternarize_rounds_half_to_even_and_clamps() {
    assert_eq!(ternarize(0.5, 1.0), 0);
    assert_eq!(ternarize(-0.5, 1.0), 0);
    assert_eq!(ternarize(0.51, 1.0), 1);
    assert_eq!(ternarize(1.5, 1.0), 1);
    assert_eq!(ternarize(-7.0, 1.0), -1);
    assert_eq!(ternarize(0.3, 2.0), 1);
    // mean |w| = 1.5, so s_w = 2/3.
    assert!((weight_scale(&[1.0, -2.0]) - 2.0 / 3.0).abs() < 1e-7);
    assert_eq!(weight_scale(&[0.0; 4]), 1e5);
}

#[test]
fn fast_rounding_equals_f32_round() {
    let mut rng = StdRng::seed_from_u64(13);
    let mut values: Vec<f32> = (0..100_000)
        .map(|_| (rng.random::<f32>() - 0.5) * 300.0)
        .collect();
    for k in -300..=300 {
        let h = k as f32 * 0.5;
        values.extend([h, h.next_up(), h.next_down()]);
    }
    values.extend([0.0, -0.0, 0.49999997, -0.49999997, 8388607.5, 1e9, -1e9]);
    for &v in &values {
        assert_eq!(round_half_away(v), v.round() as i32, "{v}");
    }
    // The quantiser's lane-wise form, within its range |v| < 2²², and NaN.
    for v in values.into_iter().filter(|v| v.abs() < 4194304.0) {
        assert_eq!(round_to_i8(v), v.round().clamp(-128.0, 127.0) as i8, "{v}");
    }
    assert_eq!(round_to_i8(f32::NAN), 0);
    assert_eq!(round_to_i8(-0.0), 0);
    assert_eq!(round_to_i8(-127.5), -128);
    assert_eq!(round_to_i8(126.5), 127);
    assert_eq!(max_abs(&[]), 0.0);
    let x: Vec<f32> = (0..37).map(|k| (k as f32 - 20.0) * 0.1).collect();
    assert_eq!(max_abs(&x), 2.0);
}

#[test]
fn quantize_rounds_half_away_from_zero() {
    // max |x| = 127 gives s = 1, so the values themselves are rounded.
    let x = [0.5, -0.5, 1.5, -127.0, 2.49, 127.0];
    let mut q = [0i8; 6];
    let s = quantize_i8(&x, &mut q);
    assert_eq!(s, 1.0);
    assert_eq!(q, [1, -1, 2, -127, 2, 127]);
    let s = quantize_i8(&[0.0, 0.0], &mut q);
    assert_eq!(s, 127.0 / 1e-5);
    assert_eq!(&q[..2], &[0, 0]);
}

#[test]
fn packing_keeps_every_sign() {
    let mut rng = StdRng::seed_from_u64(3);
    for (rows, cols) in [(1, 1), (9, 33), (40, 70)] {
        let w: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random::<f32>() - 0.5)
            .collect();
        let m = TernaryMatrix::from_f32(rows, cols, &w).unwrap();
        let s = weight_scale(&w);
        assert_eq!(m.scale(), s);
        let signs: Vec<i8> = w.iter().map(|&v| ternarize(v, s)).collect();
        for layout in [Layout::Base3, Layout::TwoBit] {
            let m = TernaryMatrix::from_signs_in(layout, rows, cols, &signs, s).unwrap();
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(m.sign(r, c), signs[r * cols + c], "{layout:?} ({r}, {c})");
                }
            }
            // Base 3: 16 bits per 9 weights once the padding to whole bands and words is
            // counted; two bits: 32 bytes per 128 columns.
            let padded_rows = rows.div_ceil(BAND_ROWS) * BAND_ROWS;
            let bytes = match layout {
                Layout::Base3 => padded_rows * cols.div_ceil(9) * 2,
                Layout::TwoBit => padded_rows * cols.div_ceil(128) * 32,
            };
            assert_eq!(m.packed_bytes(), bytes, "{layout:?}");
        }
    }
}

#[test]
fn tables_hold_every_signed_sum() {
    let mut a = QuantizedActivations::new(4);
    a.set_i8(&[1, 10, 100, -7]);
    a.build_tables(Kernel::Scalar);
    // Code 11 = (1 + 1) + 3 · (-1 + 1) + 9 · (0 + 1): weights (+1, -1, 0).
    assert_eq!(encode([1, -1, 0]), 11);
    assert_eq!(a.tables[0].0[11], 1 - 10);
    assert_eq!(a.tables[0].0[26], 111);
    assert_eq!(a.tables[0].0[0], -111);
    assert_eq!(a.tables[0].0[13], 0);
    // Group 1 holds -7 and two zero paddings.
    assert_eq!(a.tables[1].0[2], -7);
    assert!(a.tables[0].0[27..].iter().all(|&v| v == 0));
    // Every kernel's table builder gives the same tables.
    let mut rng = StdRng::seed_from_u64(17);
    let mut b = QuantizedActivations::new(301);
    b.set_i8(&random_i8(&mut rng, 301));
    b.build_tables(Kernel::Scalar);
    let want = b.tables.clone();
    for kernel in Kernel::available() {
        b.tables.fill(Line::default());
        b.build_tables(kernel);
        assert_eq!(b.tables, want, "{}", kernel.name());
    }
}

#[test]
fn an_arena_packs_matrices_back_to_back() {
    let mut rng = StdRng::seed_from_u64(19);
    // The middle matrix makes the buffer larger than 2 MiB, so it is a huge-page mapping.
    let shapes = [(33, 70), (3200, 3000), (5, 9)];
    let signs: Vec<Vec<i8>> = shapes
        .iter()
        .map(|&(r, c)| random_signs(&mut rng, r * c))
        .collect();
    let mut arena = TernaryArena::new(&shapes);
    assert!(arena.buf.map.is_some());
    for (k, s) in signs.iter().enumerate().rev() {
        arena.pack_signs(k, s, 1.0 + k as f32).unwrap();
    }
    assert!(arena.pack_signs(3, &signs[2], 1.0).is_err());
    let mats = arena.finish().unwrap();
    for (k, (m, &(r, c))) in mats.iter().zip(&shapes).enumerate() {
        assert_eq!(
            *m,
            TernaryMatrix::from_signs(r, c, &signs[k], 1.0 + k as f32).unwrap()
        );
        let q = random_i8(&mut rng, c);
        let mut x = QuantizedActivations::new(c);
        x.set_i8(&q);
        let (mut want, mut got) = (vec![0; r], vec![0; r]);
        m.gemv_reference(&q, &mut want);
        m.gemv(&x, &mut got);
        assert_eq!(got, want, "matrix {k}");
    }
    let mut unfinished = TernaryArena::new(&shapes[..2]);
    unfinished.pack_signs(0, &signs[0], 1.0).unwrap();
    let err = unfinished.finish().unwrap_err().to_string();
    assert!(err.contains("matrix 1 was never packed"), "{err}");
}

#[test]
fn bad_inputs_are_errors() {
    assert!(TernaryMatrix::from_f32(2, 3, &[0.0; 5]).is_err());
    assert!(TernaryMatrix::from_f32(1, 2, &[0.0, f32::NAN]).is_err());
    assert!(TernaryMatrix::from_signs(1, 2, &[0, 2], 1.0).is_err());
    assert!(TernaryMatrix::from_signs(1, 2, &[0, 1], 0.0).is_err());
    // Past 2²¹ columns the two-bit kernel's i32 sums could overflow: refused by name.
    let cols = (1 << 21) + 1;
    let err = TernaryMatrix::from_signs_in(Layout::TwoBit, 1, cols, &vec![0; cols], 1.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than the two-bit kernel"), "{err}");
    assert!(TernaryMatrix::from_signs_in(Layout::Base3, 1, cols, &vec![0; cols], 1.0).is_ok());
}

#[test]
fn every_kernel_equals_the_reference_exactly() {
    let mut rng = StdRng::seed_from_u64(7);
    println!("kernels: {:?}", Kernel::available());
    for (rows, cols) in [
        (1, 1),
        (3, 31),
        (32, 9),
        (33, 10),
        (7, 33),
        (40, 65),
        (21, 300),
        (64, 1024),
        (100, 257),
        (300, 1000),
        (70, 2817),
    ] {
        let signs = random_signs(&mut rng, rows * cols);
        let q = random_i8(&mut rng, cols);
        let mut x = QuantizedActivations::new(cols);
        x.set_i8(&q);
        let mut want = vec![0; rows];
        TernaryMatrix::from_signs(rows, cols, &signs, 1.0)
            .unwrap()
            .gemv_reference(&q, &mut want);
        for layout in [Layout::Base3, Layout::TwoBit] {
            let m = TernaryMatrix::from_signs_in(layout, rows, cols, &signs, 1.0).unwrap();
            // Every kernel: those of another layout run the layout's portable kernel.
            for kernel in Kernel::available() {
                let mut got = vec![i32::MIN; rows];
                m.gemv_with(kernel, &x, &mut got);
                assert_eq!(got, want, "{} on {layout:?} {rows} x {cols}", kernel.name());
            }
        }
    }
}

#[test]
fn long_rows_of_extreme_activations_do_not_overflow() {
    // 9000 columns make 1000 words in 12 column blocks of at most 85 words (an i16 lane
    // holds 85 sums), and -128 everywhere is the largest magnitude.
    let (rows, cols) = (9, 9000);
    let mut signs = vec![1i8; rows * cols];
    signs[cols..2 * cols].fill(-1);
    let mut rng = StdRng::seed_from_u64(11);
    signs[4 * cols..].copy_from_slice(&random_signs(&mut rng, 5 * cols));
    for kernel in Kernel::available() {
        let m = TernaryMatrix::from_signs_in(kernel.layout(), rows, cols, &signs, 1.0).unwrap();
        for fill in [-128i8, 127] {
            let q = vec![fill; cols];
            let mut x = QuantizedActivations::new(cols);
            x.set_i8(&q);
            let mut want = vec![0; rows];
            m.gemv_reference(&q, &mut want);
            assert_eq!(want[0], fill as i32 * cols as i32);
            assert_eq!(want[1], -(fill as i32) * cols as i32);
            let mut got = vec![0; rows];
            m.gemv_with(kernel, &x, &mut got);
            assert_eq!(got, want, "{} with {fill}", kernel.name());
            // Batched: five vectors, more than one group of the AVX2 batch kernel.
            let mut got = vec![0; 5 * rows];
            m.gemv_batch_with(kernel, &[&x; 5], &mut got);
            assert_eq!(got, want.repeat(5), "{} batched with {fill}", kernel.name());
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = StdRng::seed_from_u64(5);
    let (rows, cols) = (1000, 700);
    let m =
        TernaryMatrix::from_signs(rows, cols, &random_signs(&mut rng, rows * cols), 1.0).unwrap();
    let mut x = QuantizedActivations::new(cols);
    x.set_i8(&random_i8(&mut rng, cols));
    let mut want = vec![0; rows];
    m.gemv_reference(x.as_i8(), &mut want);
    for threads in [1, 3] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let mut got = vec![0; rows];
        pool.install(|| m.gemv(&x, &mut got));
        assert_eq!(got, want, "{threads} threads");
    }
}

#[test]
fn every_table_builder_gives_the_same_tables() {
    let mut rng = StdRng::seed_from_u64(17);
    for cols in [1, 10, 300] {
        let mut q = random_i8(&mut rng, cols);
        q[0] = -128;
        let mut x = QuantizedActivations::new(cols);
        x.set_i8(&q);
        x.build_tables(Kernel::Scalar);
        let want = x.tables.clone();
        for kernel in Kernel::available() {
            x.build_tables(kernel);
            assert_eq!(x.tables, want, "{} tables, {cols} columns", kernel.name());
        }
    }
}

#[test]
fn kernel_names_parse_as_nerve_isa_spells_them() {
    for k in Kernel::ALL {
        assert_eq!(Kernel::parse(k.name()), Some(k));
    }
    assert_eq!(Kernel::parse("portable"), Some(Kernel::Scalar));
    assert_eq!(Kernel::parse(" AVX2 "), Some(Kernel::Avx2));
    assert_eq!(Kernel::parse("neon"), None);
    // Whatever NERVE_ISA says, the chosen kernel runs on this CPU.
    assert!(Kernel::detect().is_supported());
}

#[test]
fn batched_gemv_equals_the_reference_for_every_vector() {
    let mut rng = StdRng::seed_from_u64(23);
    for (rows, cols, n) in [
        (1, 1, 1),
        (33, 10, 3),
        (300, 1000, 5),
        (130, 257, 2),
        (64, 9, 0),
    ] {
        let signs = random_signs(&mut rng, rows * cols);
        let xs: Vec<QuantizedActivations> = (0..n)
            .map(|_| {
                let mut x = QuantizedActivations::new(cols);
                x.set_i8(&random_i8(&mut rng, cols));
                x
            })
            .collect();
        let mut want = vec![0; n * rows];
        let m = TernaryMatrix::from_signs(rows, cols, &signs, 1.0).unwrap();
        for (s, x) in xs.iter().enumerate() {
            m.gemv_reference(x.as_i8(), &mut want[s * rows..(s + 1) * rows]);
        }
        for kernel in Kernel::available() {
            let m = TernaryMatrix::from_signs_in(kernel.layout(), rows, cols, &signs, 1.0).unwrap();
            for threads in [1, 3] {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                let mut got = vec![i32::MIN; n * rows];
                let refs: Vec<&QuantizedActivations> = xs.iter().collect();
                pool.install(|| m.gemv_batch_with(kernel, &refs, &mut got));
                assert_eq!(
                    got,
                    want,
                    "{} on {rows} x {cols}, {n} vectors, {threads} threads",
                    kernel.name()
                );
            }
        }
    }
}
