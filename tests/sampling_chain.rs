//! The sampler chain through its public Rust API: determinism (a pinned token sequence),
//! greedy = argmax, top-k 1 = greedy, what each filter keeps, the penalty formulas, the
//! draw's frequencies, and bad input.

use tern::sampling::rng::Xoshiro256;
use tern::sampling::{LogitBias, Sampler, SamplerParams, SEED_RANDOM};

/// A fixed row of 32 logits in [-4, 4) with a few ties, the same on every platform.
fn fixed_logits() -> Vec<f32> {
    (0..32u32)
        .map(|i| ((i * 13 + 5) % 32) as f32 * 0.25 - 4.0)
        .collect()
}

/// A pseudo-random row of `n` logits in [-8, 8) from `seed`.
fn random_logits(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Xoshiro256::from_seed(seed);
    (0..n).map(|_| (r.next_f64() * 16.0 - 8.0) as f32).collect()
}

/// Argmax with ties to the lowest id, written plainly.
fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn params(seed: u64) -> SamplerParams {
    SamplerParams {
        seed,
        ..SamplerParams::default()
    }
}

/// Samples `n` tokens from `logits`, accepting each one.
fn run(s: &mut Sampler, logits: &[f32], n: usize) -> Vec<u32> {
    (0..n)
        .map(|_| {
            let t = s.sample(logits).unwrap();
            s.accept(t);
            t
        })
        .collect()
}

#[test]
fn pinned_sequences_for_a_fixed_seed() {
    // Values computed by this code once and checked for plausibility: the logits are
    // 0.25 apart (token 2 highest at 3.75, then 29, 24, 19, 14, 9, 4, 31, 26, 21, 16,
    // 11, ...). With the defaults, min-p 0.05 keeps the 13 tokens within ln 20 = 3.0 of
    // the top and top-p 0.95 the best 12 of them; token 2 has p ~ 0.27 after temperature
    // 0.8, so about 6 of 24 draws: every token below is among those 12 and 2 shows 7 times.
    let logits = fixed_logits();
    let mut s = Sampler::new(params(1234)).unwrap();
    assert_eq!(
        run(&mut s, &logits, 24),
        [2, 9, 19, 4, 2, 4, 29, 2, 24, 19, 24, 2, 2, 19, 29, 9, 24, 26, 21, 9, 14, 2, 29, 2]
    );
    // Hotter, with penalties over the last 8 tokens: lower tokens (6, 11, 16) appear and
    // immediate repeats are rarer.
    let mut p = params(1234);
    p.temperature = 1.5;
    p.penalty_repeat = 1.3;
    p.penalty_freq = 0.1;
    p.penalty_last_n = 8;
    let mut s = Sampler::new(p).unwrap();
    assert_eq!(
        run(&mut s, &logits, 24),
        [2, 26, 9, 16, 29, 11, 14, 19, 14, 19, 4, 24, 2, 31, 9, 31, 9, 11, 6, 9, 26, 29, 19, 2]
    );
}

#[test]
fn same_seed_same_tokens_reset_restarts_other_seeds_differ() {
    let logits = random_logits(1000, 5);
    let mut p = params(99);
    p.top_k = 0;
    p.min_p = 0.0;
    p.penalty_repeat = 1.1;
    let a = run(&mut Sampler::new(p.clone()).unwrap(), &logits, 40);
    let mut s = Sampler::new(p.clone()).unwrap();
    assert_eq!(run(&mut s, &logits, 40), a);
    s.reset();
    assert_eq!(s.window().len(), 0);
    assert_eq!(run(&mut s, &logits, 40), a);
    p.seed = 100;
    assert_ne!(run(&mut Sampler::new(p).unwrap(), &logits, 40), a);
}

#[test]
fn a_random_seed_is_reported_and_reproduces_the_run() {
    let logits = random_logits(500, 6);
    let mut s = Sampler::new(SamplerParams::default()).unwrap();
    assert_ne!(s.seed(), SEED_RANDOM);
    let a = run(&mut s, &logits, 30);
    let mut again = Sampler::new(params(s.seed())).unwrap();
    assert_eq!(run(&mut again, &logits, 30), a);
}

#[test]
fn greedy_is_argmax_with_ties_to_the_lowest_id() {
    for seed in 0..50 {
        let logits = random_logits(257, seed);
        for temp in [0.0, -1.0] {
            let mut s = Sampler::new(SamplerParams {
                temperature: temp,
                seed,
                ..SamplerParams::default()
            })
            .unwrap();
            assert_eq!(s.sample(&logits).unwrap(), argmax(&logits));
        }
    }
    let mut s = Sampler::new(SamplerParams::greedy()).unwrap();
    assert_eq!(s.sample(&[1.0, 3.0, -2.0, 3.0, 3.0]).unwrap(), 1);
    assert_eq!(s.sample(&[7.0, 7.0]).unwrap(), 0);
    assert_eq!(s.sample(&[0.5]).unwrap(), 0);
}

#[test]
fn top_k_one_is_greedy() {
    for seed in 0..30 {
        let mut logits = random_logits(300, seed + 1000);
        if seed % 3 == 0 {
            // A tie at the top: the lower id wins in both.
            let m = argmax(&logits) as usize;
            logits[m / 2] = logits[m];
        }
        let mut s = Sampler::new(SamplerParams {
            seed,
            top_k: 1,
            temperature: 0.5 + seed as f32 * 0.1,
            ..SamplerParams::default()
        })
        .unwrap();
        for _ in 0..3 {
            assert_eq!(s.sample(&logits).unwrap(), argmax(&logits));
        }
    }
}

/// Logits whose softmax is `probs`.
fn ln(probs: &[f64]) -> Vec<f32> {
    probs.iter().map(|p| p.ln() as f32).collect()
}

/// Samples once with only the given filters on (temperature 1) and returns the ids that
/// survived, sorted.
fn survivors(p: SamplerParams, logits: &[f32]) -> Vec<u32> {
    let mut s = Sampler::new(p).unwrap();
    s.sample(logits).unwrap();
    let mut ids: Vec<u32> = s.candidates().iter().map(|c| c.id).collect();
    ids.sort();
    ids
}

fn only_filters() -> SamplerParams {
    SamplerParams {
        seed: 7,
        temperature: 1.0,
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        ..SamplerParams::default()
    }
}

#[test]
fn each_filter_keeps_what_it_should() {
    // p = 0.05, 0.4, 0.3, 0.15, 0.06, 0.04
    let logits = ln(&[0.05, 0.4, 0.3, 0.15, 0.06, 0.04]);
    let all: Vec<u32> = (0..6).collect();
    assert_eq!(survivors(only_filters(), &logits), all);
    let with = |f: &dyn Fn(&mut SamplerParams)| {
        let mut p = only_filters();
        f(&mut p);
        survivors(p, &logits)
    };
    assert_eq!(with(&|p| p.top_k = 2), [1, 2]);
    assert_eq!(with(&|p| p.top_k = 6), all);
    assert_eq!(with(&|p| p.top_p = 0.65), [1, 2]); // 0.4 + 0.3 >= 0.65
    assert_eq!(with(&|p| p.top_p = 0.8), [1, 2, 3]); // 0.85
    assert_eq!(with(&|p| p.top_p = 0.9), [1, 2, 3, 4]); // 0.91
    assert_eq!(with(&|p| p.min_p = 0.14), [1, 2, 3, 4]); // >= 0.056
    assert_eq!(with(&|p| p.min_p = 0.5), [1, 2]); // >= 0.2
    assert_eq!(
        with(&|p| {
            p.min_p = 0.5;
            p.min_keep = 4;
        }),
        [1, 2, 3, 4]
    );
    // Typical: H = 1.46 nats; |-ln p - H| = 1.54, 0.54, 0.26, 0.44, 1.35, 1.76: the
    // order is 2, 3, 1, 4, 0, 5 with running mass 0.3, 0.45, 0.85, ...
    assert_eq!(with(&|p| p.typical_p = 0.4), [2, 3]);
    assert_eq!(with(&|p| p.typical_p = 0.8), [1, 2, 3]);
    // Chained: top-k 4 then min-p 0.5 of the best.
    assert_eq!(
        with(&|p| {
            p.top_k = 4;
            p.min_p = 0.5;
        }),
        [1, 2]
    );
}

#[test]
fn temperature_scales_the_distribution() {
    let logits = random_logits(50, 77);
    for temp in [0.25f32, 0.8, 1.0, 2.0] {
        let mut s = Sampler::new(SamplerParams {
            temperature: temp,
            ..only_filters()
        })
        .unwrap();
        s.sample(&logits).unwrap();
        let cands = s.candidates();
        assert_eq!(cands.len(), 50);
        let max = logits.iter().fold(f32::MIN, |a, &b| a.max(b)) as f64 / temp as f64;
        let z: f64 = logits
            .iter()
            .map(|&l| (l as f64 / temp as f64 - max).exp())
            .sum();
        for c in cands {
            let want = ((logits[c.id as usize] as f64 / temp as f64) - max).exp() / z;
            assert!((c.p - want).abs() < 1e-6, "temp {temp} token {}", c.id);
        }
    }
}

#[test]
fn draws_follow_the_probabilities() {
    let probs = [0.5, 0.2, 0.15, 0.1, 0.05];
    let logits = ln(&probs);
    let mut s = Sampler::new(only_filters()).unwrap();
    let n = 20_000;
    let mut hist = [0usize; 5];
    for _ in 0..n {
        hist[s.sample(&logits).unwrap() as usize] += 1;
    }
    for (i, &p) in probs.iter().enumerate() {
        let f = hist[i] as f64 / n as f64;
        // 5 standard deviations of a binomial proportion.
        let tol = 5.0 * (p * (1.0 - p) / n as f64).sqrt();
        assert!((f - p).abs() < tol, "token {i}: {f} vs {p}");
    }
}

#[test]
fn penalties_change_exactly_the_tokens_in_the_window() {
    let logits = random_logits(64, 3);
    let (repeat, freq, present) = (1.25f32, 0.3f32, 0.7f32);
    let mut s = Sampler::new(SamplerParams {
        temperature: 0.0,
        penalty_last_n: 6,
        penalty_repeat: repeat,
        penalty_freq: freq,
        penalty_present: present,
        ..SamplerParams::default()
    })
    .unwrap();
    // 40 and 41 fall out of the 6-token window; 1000 is outside the vocabulary.
    for t in [40, 41, 5, 9, 5, 1000, 12, 5] {
        s.accept(t);
    }
    assert_eq!(s.window().collect::<Vec<_>>(), [5, 9, 5, 1000, 12, 5]);
    s.sample(&logits).unwrap();
    let after: Vec<f32> = s.candidates().iter().map(|c| c.logit).collect();
    assert_eq!(after.len(), 64);
    for (i, (&l, &a)) in logits.iter().zip(&after).enumerate() {
        let count = match i {
            5 => 3.0f32,
            9 | 12 => 1.0,
            _ => 0.0,
        };
        let want = if count == 0.0 {
            l
        } else {
            let scaled = if l <= 0.0 { l * repeat } else { l / repeat };
            scaled - (count * freq + present)
        };
        assert_eq!(
            a.to_bits(),
            want.to_bits(),
            "token {i}: {l} -> {a}, want {want}"
        );
    }
    // The mix of signs makes both branches of the formula run.
    assert!(logits[5] > 0.0 || logits[9] > 0.0 || logits[12] > 0.0);
    assert!(logits[5] <= 0.0 || logits[9] <= 0.0 || logits[12] <= 0.0);
}

#[test]
fn repetition_penalty_moves_greedy_off_a_repeated_token() {
    let logits = [2.0f32, 1.9, 0.5];
    let mut s = Sampler::new(SamplerParams {
        temperature: 0.0,
        penalty_repeat: 1.1,
        ..SamplerParams::default()
    })
    .unwrap();
    assert_eq!(s.sample(&logits).unwrap(), 0);
    s.accept(0);
    assert_eq!(s.sample(&logits).unwrap(), 1); // 2.0 / 1.1 < 1.9
                                               // Off (window 0): nothing changes.
    let mut s = Sampler::new(SamplerParams {
        temperature: 0.0,
        penalty_repeat: 1.1,
        penalty_last_n: 0,
        ..SamplerParams::default()
    })
    .unwrap();
    s.accept(0);
    assert_eq!(s.window().len(), 0);
    assert_eq!(s.sample(&logits).unwrap(), 0);
}

#[test]
fn logit_bias_shifts_and_bans() {
    let logits = [1.0f32, 2.0, 3.0];
    let biased = |bias: Vec<LogitBias>| {
        let mut s = Sampler::new(SamplerParams {
            logit_bias: bias,
            ..SamplerParams::greedy()
        })
        .unwrap();
        s.sample(&logits)
    };
    assert_eq!(biased(vec![]).unwrap(), 2);
    let ban = |token| LogitBias {
        token,
        bias: f32::NEG_INFINITY,
    };
    assert_eq!(biased(vec![ban(2)]).unwrap(), 1);
    assert_eq!(
        biased(vec![LogitBias {
            token: 0,
            bias: 2.5
        }])
        .unwrap(),
        0
    );
    assert!(biased(vec![ban(0), ban(1), ban(2)]).is_err());
    let err = biased(vec![ban(3)]).unwrap_err();
    assert!(err.to_string().contains("token 3"), "{err}");
    // A banned token is never drawn either.
    let mut s = Sampler::new(SamplerParams {
        logit_bias: vec![ban(1)],
        ..only_filters()
    })
    .unwrap();
    for _ in 0..500 {
        assert_ne!(s.sample(&[0.0, 0.0, 0.0]).unwrap(), 1);
    }
}

#[test]
fn nan_and_infinite_logits() {
    let mut s = Sampler::new(params(1)).unwrap();
    assert!(s.sample(&[]).is_err());
    assert!(s.sample(&[f32::NAN; 8]).is_err());
    let err = s
        .sample(&[f32::NAN, f32::NEG_INFINITY, f32::NAN])
        .unwrap_err();
    assert!(err.to_string().contains("no token is possible"), "{err}");
    assert!(s.candidates().is_empty());
    // NaN tokens are never chosen; the rest still works.
    let row = [f32::NAN, 0.0, f32::NAN, 0.1, f32::NEG_INFINITY];
    for _ in 0..200 {
        let t = s.sample(&row).unwrap();
        assert!(t == 1 || t == 3, "{t}");
    }
    let mut g = Sampler::new(SamplerParams::greedy()).unwrap();
    assert_eq!(g.sample(&[f32::NAN, -5.0, f32::NAN]).unwrap(), 1);
    // +inf takes all the probability.
    for _ in 0..50 {
        assert_eq!(s.sample(&[1.0, f32::INFINITY, 2.0]).unwrap(), 1);
    }
    let mut t = Sampler::new(SamplerParams {
        typical_p: 0.5,
        ..params(3)
    })
    .unwrap();
    assert_eq!(t.sample(&[1.0, f32::INFINITY, 2.0]).unwrap(), 1);
}

/// Sets one parameter of a sampler's parameters.
type SetParam = fn(&mut SamplerParams);

#[test]
fn bad_parameters_are_refused() {
    let bad: [(&str, SetParam); 21] = [
        ("temperature", |p| p.temperature = f32::NAN),
        ("temperature", |p| p.temperature = f32::INFINITY),
        ("temperature", |p| p.temperature = f32::NEG_INFINITY),
        ("top_p", |p| p.top_p = f32::NAN),
        ("top_p", |p| p.top_p = f32::INFINITY),
        ("top_p", |p| p.top_p = f32::NEG_INFINITY),
        ("min_p", |p| p.min_p = f32::NAN),
        ("min_p", |p| p.min_p = f32::INFINITY),
        ("min_p", |p| p.min_p = f32::NEG_INFINITY),
        ("typical_p", |p| p.typical_p = f32::NAN),
        ("typical_p", |p| p.typical_p = f32::INFINITY),
        ("typical_p", |p| p.typical_p = f32::NEG_INFINITY),
        ("penalty_repeat", |p| p.penalty_repeat = 0.0),
        ("penalty_repeat", |p| p.penalty_repeat = f32::INFINITY),
        ("penalty_freq", |p| p.penalty_freq = f32::INFINITY),
        ("penalty_freq", |p| p.penalty_freq = f32::NAN),
        ("penalty_present", |p| p.penalty_present = f32::NEG_INFINITY),
        ("penalty_present", |p| p.penalty_present = f32::NAN),
        ("penalty_last_n", |p| p.penalty_last_n = usize::MAX),
        ("logit bias", |p| {
            p.logit_bias = vec![LogitBias {
                token: 0,
                bias: f32::NAN,
            }]
        }),
        ("penalty_repeat", |p| p.penalty_repeat = -1.0),
    ];
    for (name, set) in bad {
        let mut p = SamplerParams::default();
        set(&mut p);
        let e = Sampler::new(p.clone()).unwrap_err();
        assert!(
            matches!(e, tern::Error::InvalidArgument(_)) && e.to_string().contains(name),
            "{p:?}: {e}"
        );
    }
    // The largest finite values are accepted (top-p and typical off, min-p keeps the best).
    let mut s = Sampler::new(SamplerParams {
        top_p: f32::MAX,
        min_p: f32::MAX,
        typical_p: f32::MAX,
        ..params(5)
    })
    .unwrap();
    assert_eq!(s.sample(&[0.0, 2.0, 1.0]).unwrap(), 1);
}

#[test]
fn defaults_match_llama_cpp_common() {
    let d = SamplerParams::default();
    assert_eq!(d.temperature, 0.8);
    assert_eq!(d.top_k, 40);
    assert_eq!(d.top_p, 0.95);
    assert_eq!(d.min_p, 0.05);
    assert_eq!(d.typical_p, 1.0);
    assert_eq!(d.penalty_last_n, 64);
    assert_eq!(d.penalty_repeat, 1.0);
    assert_eq!(d.penalty_freq, 0.0);
    assert_eq!(d.penalty_present, 0.0);
    assert_eq!(d.seed, SEED_RANDOM);
}
