//! The command line after `--`.

use std::path::PathBuf;

/// Command-line options after `--`.
#[derive(Debug, Clone)]
pub(crate) struct Opts {
    pub(crate) workload: String,
    pub(crate) iters: usize,
    pub(crate) warmup: usize,
    pub(crate) modes: Option<Vec<String>>,
    pub(crate) round: usize,
    pub(crate) data: Option<PathBuf>,
    pub(crate) json_only: bool,
    pub(crate) epochs: usize,
    pub(crate) eval_every: usize,
    pub(crate) target: Option<f64>,
    pub(crate) train_limit: Option<usize>,
    pub(crate) test_limit: Option<usize>,
    pub(crate) seed: u64,
}

pub(crate) fn parse_opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let mut o = Opts {
        workload: String::new(),
        iters: 10,
        warmup: 2,
        modes: None,
        round: 1,
        data: None,
        json_only: false,
        epochs: 3,
        eval_every: 50,
        target: None,
        train_limit: None,
        test_limit: None,
        seed: 0,
    };
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        v.as_deref()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{flag} needs a number"))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--iters" => o.iters = num("--iters", args.next())?,
            "--warmup" => o.warmup = num("--warmup", args.next())?,
            "--round" => o.round = num("--round", args.next())?,
            "--epochs" => o.epochs = num("--epochs", args.next())?,
            "--eval-every" => o.eval_every = num("--eval-every", args.next())?,
            "--target" => o.target = Some(num("--target", args.next())?),
            "--train-limit" => o.train_limit = Some(num("--train-limit", args.next())?),
            "--test-limit" => o.test_limit = Some(num("--test-limit", args.next())?),
            "--seed" => o.seed = num("--seed", args.next())?,
            "--json" => o.json_only = true,
            "--data" => o.data = Some(args.next().ok_or("--data needs a folder")?.into()),
            "--modes" => {
                let list = args.next().ok_or("--modes needs a list")?;
                o.modes = Some(list.split(',').map(str::to_string).collect());
            }
            w if !w.starts_with('-') && o.workload.is_empty() => o.workload = w.to_string(),
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    if o.workload.is_empty() {
        return Err(
            "name a workload: sgemm, w1-dense, w1-mnist, w2-512, w2-4096, w3, check, tta".into(),
        );
    }
    if o.iters == 0 {
        return Err("--iters must be at least 1".into());
    }
    Ok(o)
}
