//! The steps of the sampler chain, each working in place on a candidate list. Their
//! semantics are those of llama.cpp's samplers of the same names (see [`super`]).
//!
//! Every ordering uses a total order — logit descending, then token id ascending — so the
//! result never depends on the sort algorithm, and every sum runs in `f64` in list order,
//! so the same input gives the same bits everywhere. Nothing here allocates: buffers come
//! from the caller with enough capacity.

use std::cmp::Ordering;

use super::math;

/// One token under consideration: its id, its (possibly modified) logit, and a
/// probability filled in by the steps that need one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The token id.
    pub id: u32,
    /// The logit after the steps so far (bias, penalties, temperature).
    pub logit: f32,
    /// The probability within the list, once a step has computed it (else 0).
    pub p: f64,
}

/// The total order of candidates: higher logit first, then lower id. Logits are never
/// NaN here (NaN candidates are dropped before any step that orders them).
pub(crate) fn by_logit_then_id(a: &Candidate, b: &Candidate) -> Ordering {
    b.logit.total_cmp(&a.logit).then(a.id.cmp(&b.id))
}

/// A candidate list and whether it is known to be in [`by_logit_then_id`] order.
pub(crate) struct Candidates<'a> {
    pub items: &'a mut Vec<Candidate>,
    pub sorted: bool,
}

impl Candidates<'_> {
    /// Puts the `m` best candidates first, in order (the rest follow in no useful order).
    /// O(n + m log m).
    pub fn sort_prefix(&mut self, m: usize) {
        if self.sorted {
            return;
        }
        let n = self.items.len();
        let m = m.min(n);
        if m == 0 {
            return;
        }
        if m < n {
            self.items.select_nth_unstable_by(m - 1, by_logit_then_id);
        }
        self.items[..m].sort_unstable_by(by_logit_then_id);
        if m == n {
            self.sorted = true;
        }
    }

    /// Sorts the whole list.
    pub fn sort(&mut self) {
        let n = self.items.len();
        self.sort_prefix(n);
        self.sorted = true;
    }

    /// Fills `p` with the softmax of the logits (in `f64`, summed in list order) and
    /// returns the maximum logit and the sum of `exp(logit - max)`.
    pub fn softmax(&mut self) -> (f32, f64) {
        let max = self.max_logit();
        let mut sum = 0.0;
        for c in self.items.iter_mut() {
            c.p = weight(c.logit, max);
            sum += c.p;
        }
        for c in self.items.iter_mut() {
            c.p /= sum;
        }
        (max, sum)
    }

    /// The largest logit (the list is never empty when steps run).
    pub fn max_logit(&self) -> f32 {
        if self.sorted {
            return self.items[0].logit;
        }
        self.items
            .iter()
            .map(|c| c.logit)
            .fold(f32::NEG_INFINITY, f32::max)
    }
}

/// exp(logit - max) in `f64`; exactly 1 for the maximum itself (also when it is +inf).
fn weight(logit: f32, max: f32) -> f64 {
    if logit == max {
        1.0
    } else {
        math::exp(logit as f64 - max as f64)
    }
}

/// Repetition, frequency and presence penalties (llama.cpp's formulas): a token seen
/// `count > 0` times in the window gets `logit / repeat` when its logit is positive and
/// `logit * repeat` otherwise, then `- count * freq - present`. `items[i].id == i` must
/// hold (the list is still in vocabulary order); `counts` is zero on entry, has one slot
/// per item, and is zero again on return. Tokens outside the vocabulary are ignored.
pub(crate) fn apply_penalties(
    items: &mut [Candidate],
    window: impl Iterator<Item = u32> + Clone,
    counts: &mut [u32],
    repeat: f32,
    freq: f32,
    present: f32,
) {
    let n = items.len().min(counts.len());
    for t in window.clone() {
        if (t as usize) < n {
            counts[t as usize] += 1;
        }
    }
    for t in window {
        let t = t as usize;
        if t >= n || counts[t] == 0 {
            continue;
        }
        let count = counts[t];
        counts[t] = 0;
        let c = &mut items[t];
        debug_assert_eq!(c.id as usize, t);
        if c.logit <= 0.0 {
            c.logit *= repeat;
        } else {
            c.logit /= repeat;
        }
        c.logit -= count as f32 * freq + present;
    }
}

/// Top-k: keeps the `k` best candidates (all when `k` is 0 or at least the list size),
/// leaving them sorted.
pub(crate) fn top_k(c: &mut Candidates, k: usize) {
    if k == 0 || k >= c.items.len() {
        return;
    }
    c.sort_prefix(k);
    c.items.truncate(k);
    c.sorted = true;
}

/// Locally typical sampling (Meister et al.): with `H` the entropy of the distribution,
/// orders candidates by `|-ln p - H|` (ties in logit order) and keeps the shortest prefix
/// whose probability exceeds `typical_p` (at least `min_keep`). No-op when `typical_p >= 1`.
/// `order` and `tmp` are scratch buffers with capacity for the whole list.
pub(crate) fn typical(
    c: &mut Candidates,
    typical_p: f32,
    min_keep: usize,
    order: &mut Vec<(f64, u32)>,
    tmp: &mut Vec<Candidate>,
) {
    if typical_p >= 1.0 {
        return;
    }
    c.sort();
    let (max, sum) = c.softmax();
    let ln_sum = math::ln(sum);
    // ln p_i = (logit_i - max) - ln(sum): exact for tokens whose p underflows to 0.
    let ln_p = |x: &Candidate| (x.logit as f64 - max as f64) - ln_sum;
    let mut entropy = 0.0;
    for x in c.items.iter() {
        if x.p > 0.0 {
            entropy -= x.p * ln_p(x);
        }
    }
    order.clear();
    for (i, x) in c.items.iter().enumerate() {
        let score = if max == f32::INFINITY {
            // Only the +inf tokens carry probability; they are the most typical.
            if x.logit == max {
                0.0
            } else {
                f64::INFINITY
            }
        } else {
            (-ln_p(x) - entropy).abs()
        };
        order.push((score, i as u32));
    }
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut keep = order.len();
    let mut cum = 0.0;
    for (i, &(_, idx)) in order.iter().enumerate() {
        cum += c.items[idx as usize].p;
        if cum > typical_p as f64 && i + 1 >= min_keep {
            keep = i + 1;
            break;
        }
    }
    tmp.clear();
    tmp.extend(order[..keep].iter().map(|&(_, idx)| c.items[idx as usize]));
    c.items.clear();
    c.items.extend_from_slice(tmp);
    c.sorted = false;
}

/// Top-p (nucleus): in logit order, keeps the shortest prefix whose probability reaches
/// `top_p` (at least `min_keep`). No-op when `top_p >= 1`. Sorts only as far as needed.
pub(crate) fn top_p(c: &mut Candidates, top_p: f32, min_keep: usize) {
    if top_p >= 1.0 {
        return;
    }
    let max = c.max_logit();
    let mut sum = 0.0;
    for x in c.items.iter() {
        sum += weight(x.logit, max);
    }
    let n = c.items.len();
    let mut sorted_upto = 0;
    let mut want = 256.min(n);
    let mut cum = 0.0;
    let mut keep = n;
    let mut i = 0;
    while i < n {
        if i == sorted_upto {
            c.sort_prefix(want);
            sorted_upto = want;
            want = (want * 8).min(n);
        }
        let x = &mut c.items[i];
        x.p = weight(x.logit, max) / sum;
        cum += x.p;
        if cum >= top_p as f64 && i + 1 >= min_keep {
            keep = i + 1;
            break;
        }
        i += 1;
    }
    c.items.truncate(keep);
    c.sorted = true;
}

/// Min-p: keeps the candidates whose probability is at least `min_p` times the largest
/// one (logit >= max + ln min_p), at least `max(min_keep, 1)` of them. No-op when
/// `min_p <= 0`. Keeps the list's order when enough pass; otherwise takes the best ones.
pub(crate) fn min_p(c: &mut Candidates, min_p: f32, min_keep: usize) {
    if min_p <= 0.0 || c.items.is_empty() {
        return;
    }
    let max = c.max_logit();
    let threshold = max as f64 + math::ln(min_p as f64);
    let passes = |x: &Candidate| x.logit == max || x.logit as f64 >= threshold;
    let n_pass = c.items.iter().filter(|x| passes(x)).count();
    let keep = n_pass.max(min_keep).max(1).min(c.items.len());
    if keep == n_pass {
        c.items.retain(passes);
    } else {
        c.sort_prefix(keep);
        c.items.truncate(keep);
        c.sorted = true;
    }
}

/// Temperature: divides every logit by `temp` (> 0).
pub(crate) fn temperature(c: &mut Candidates, temp: f32) {
    for x in c.items.iter_mut() {
        x.logit /= temp;
    }
}

/// Draws one candidate with the uniform value `u` in [0, 1): with weights
/// `w_i = exp(logit_i - max)` summed in list order to `S`, the first candidate at which
/// the running sum exceeds `u * S`. A candidate of weight 0 is never drawn. Fills `p`
/// with the probabilities. Returns the token id.
pub(crate) fn draw(c: &mut Candidates, u: f64) -> u32 {
    let max = c.max_logit();
    let mut sum = 0.0;
    for x in c.items.iter_mut() {
        x.p = weight(x.logit, max);
        sum += x.p;
    }
    let target = u * sum;
    let mut cum = 0.0;
    let mut chosen = None;
    for x in c.items.iter_mut() {
        cum += x.p;
        if chosen.is_none() && cum > target {
            chosen = Some(x.id);
        }
        x.p /= sum;
    }
    // `u * S` can round up to `S` itself when u is within an ulp of 1: take the last
    // candidate with any weight then.
    chosen.unwrap_or_else(|| {
        c.items
            .iter()
            .rev()
            .find(|x| x.p > 0.0)
            .unwrap_or(&c.items[0])
            .id
    })
}

/// Greedy: the highest logit, ties to the lowest id.
pub(crate) fn argmax(items: &[Candidate]) -> u32 {
    let mut best = items[0];
    for x in &items[1..] {
        if by_logit_then_id(x, &best) == Ordering::Less {
            best = *x;
        }
    }
    best.id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Candidates in id order whose softmax is `probs` (logits = ln p).
    fn from_probs(probs: &[f64]) -> Vec<Candidate> {
        probs
            .iter()
            .enumerate()
            .map(|(i, &p)| Candidate {
                id: i as u32,
                logit: p.ln() as f32,
                p: 0.0,
            })
            .collect()
    }

    fn ids(items: &[Candidate]) -> Vec<u32> {
        items.iter().map(|c| c.id).collect()
    }

    #[test]
    fn total_order_breaks_ties_by_id() {
        let mut v: Vec<Candidate> = [2.0f32, 5.0, 2.0, 5.0, -1.0, 5.0]
            .iter()
            .enumerate()
            .map(|(i, &l)| Candidate {
                id: i as u32,
                logit: l,
                p: 0.0,
            })
            .collect();
        v.reverse();
        let mut c = Candidates {
            items: &mut v,
            sorted: false,
        };
        c.sort();
        assert_eq!(ids(c.items), [1, 3, 5, 0, 2, 4]);
        assert_eq!(argmax(c.items), 1);
    }

    #[test]
    fn top_k_keeps_the_k_best_sorted() {
        let mut v = from_probs(&[0.1, 0.3, 0.05, 0.4, 0.15]);
        let mut c = Candidates {
            items: &mut v,
            sorted: false,
        };
        top_k(&mut c, 3);
        assert_eq!(ids(c.items), [3, 1, 4]);
        assert!(c.sorted);
        top_k(&mut c, 0);
        assert_eq!(c.items.len(), 3);
    }

    #[test]
    fn top_p_keeps_the_shortest_prefix_reaching_p() {
        let probs = [0.1, 0.25, 0.5, 0.15];
        for (p, min_keep, want) in [
            (0.4, 0, vec![2]),
            (0.7, 0, vec![2, 1]),
            (0.8, 0, vec![2, 1, 3]),
            (0.99, 0, vec![2, 1, 3, 0]),
            (0.1, 3, vec![2, 1, 3]),
            (0.0, 0, vec![2]),
        ] {
            let mut v = from_probs(&probs);
            let mut c = Candidates {
                items: &mut v,
                sorted: false,
            };
            top_p(&mut c, p, min_keep);
            assert_eq!(ids(c.items), want, "top_p {p} min_keep {min_keep}");
        }
        // Probabilities are those of the full distribution.
        let mut v = from_probs(&probs);
        let mut c = Candidates {
            items: &mut v,
            sorted: false,
        };
        top_p(&mut c, 0.7, 0);
        assert!((c.items[0].p - 0.5).abs() < 1e-6 && (c.items[1].p - 0.25).abs() < 1e-6);
    }

    #[test]
    fn top_p_on_a_long_list_sorts_in_stages() {
        // 5000 tokens, a flat tail: the nucleus needs more than the first 256.
        let mut probs = vec![1.0; 5000];
        probs[4321] = 2000.0;
        let total: f64 = probs.iter().sum();
        let probs: Vec<f64> = probs.iter().map(|p| p / total).collect();
        let mut v = from_probs(&probs);
        let mut c = Candidates {
            items: &mut v,
            sorted: false,
        };
        top_p(&mut c, 0.5, 0);
        // 2000/7000 for the peak, then 1/7000 each: 0.5 needs the peak + 1500 more
        // (give or take rounding of the f32 logits).
        assert_eq!(c.items[0].id, 4321);
        let n = c.items.len();
        assert!((1499..=1503).contains(&n), "{n}");
        // The tail is taken in id order (equal logits).
        assert!(c.items[1..].windows(2).all(|w| w[0].id < w[1].id));
    }

    #[test]
    fn min_p_keeps_tokens_above_the_ratio() {
        let probs = [0.06, 0.4, 0.04, 0.3, 0.2];
        for (m, min_keep, want) in [
            (0.125, 0, vec![0, 1, 3, 4]), // 0.05 threshold: 0.04 goes
            (0.6, 0, vec![1, 3]),         // 0.24: 0.3 stays, 0.2 goes
            (0.9, 0, vec![1]),
            (2.0, 0, vec![1]), // never fewer than one
            (0.9, 3, vec![1, 3, 4]),
        ] {
            let mut v = from_probs(&probs);
            let mut c = Candidates {
                items: &mut v,
                sorted: false,
            };
            min_p(&mut c, m, min_keep);
            let mut got = ids(c.items);
            if min_keep == 0 {
                got.sort();
            }
            assert_eq!(got, want, "min_p {m} min_keep {min_keep}");
        }
    }

    #[test]
    fn typical_keeps_the_most_typical_tokens() {
        // p = 1/2, 1/4, 1/8, 1/8: H = 1.75 ln 2; |-ln p - H| = 0.75, 0.25, 1.25, 1.25 (x ln 2).
        let probs = [0.5, 0.25, 0.125, 0.125];
        let (mut order, mut tmp) = (Vec::new(), Vec::new());
        for (t, want) in [
            (0.2, vec![1]),
            (0.5, vec![1, 0]),
            (0.8, vec![1, 0, 2]),
            (0.99, vec![1, 0, 2, 3]),
        ] {
            let mut v = from_probs(&probs);
            let mut c = Candidates {
                items: &mut v,
                sorted: false,
            };
            typical(&mut c, t, 0, &mut order, &mut tmp);
            assert_eq!(ids(c.items), want, "typical {t}");
            assert!(!c.sorted);
        }
        let mut v = from_probs(&probs);
        let mut c = Candidates {
            items: &mut v,
            sorted: false,
        };
        typical(&mut c, 0.2, 3, &mut order, &mut tmp);
        assert_eq!(ids(c.items), [1, 0, 2]);
    }

    #[test]
    fn penalties_follow_llama_cpp_formulas() {
        let logits = [1.5f32, -0.5, 0.0, 2.0, -3.0];
        let mut v: Vec<Candidate> = logits
            .iter()
            .enumerate()
            .map(|(i, &l)| Candidate {
                id: i as u32,
                logit: l,
                p: 0.0,
            })
            .collect();
        let window = [0u32, 1, 0, 2, 99, 0];
        let mut counts = vec![0; 5];
        apply_penalties(&mut v, window.iter().copied(), &mut counts, 1.5, 0.25, 0.5);
        let got: Vec<f32> = v.iter().map(|c| c.logit).collect();
        assert_eq!(
            got,
            [
                1.5 / 1.5 - (3.0 * 0.25 + 0.5),
                -0.5 * 1.5 - (0.25 + 0.5),
                0.0 * 1.5 - (0.25 + 0.5),
                2.0,
                -3.0
            ]
        );
        assert!(counts.iter().all(|&c| c == 0));
    }

    #[test]
    fn draw_picks_by_cumulative_weight_and_never_a_zero_weight() {
        let probs = [0.25, 0.5, 0.25];
        for (u, want) in [(0.0, 0), (0.2499, 0), (0.2501, 1), (0.7499, 1), (0.7501, 2)] {
            let mut v = from_probs(&probs);
            let mut c = Candidates {
                items: &mut v,
                sorted: false,
            };
            assert_eq!(draw(&mut c, u), want, "u {u}");
        }
        let mut v = vec![
            Candidate {
                id: 0,
                logit: 0.0,
                p: 0.0,
            },
            Candidate {
                id: 1,
                logit: -1e30,
                p: 0.0,
            },
        ];
        let mut c = Candidates {
            items: &mut v,
            sorted: false,
        };
        assert_eq!(draw(&mut c, 1.0 - f64::EPSILON / 2.0), 0);
        assert_eq!(c.items[1].p, 0.0);
    }

    #[test]
    fn infinite_logits_take_all_the_mass() {
        let mut v: Vec<Candidate> = [1.0f32, f32::INFINITY, 3.0, f32::INFINITY]
            .iter()
            .enumerate()
            .map(|(i, &l)| Candidate {
                id: i as u32,
                logit: l,
                p: 0.0,
            })
            .collect();
        let mut c = Candidates {
            items: &mut v,
            sorted: false,
        };
        c.softmax();
        let p: Vec<f64> = c.items.iter().map(|x| x.p).collect();
        assert_eq!(p, [0.0, 0.5, 0.0, 0.5]);
    }
}
