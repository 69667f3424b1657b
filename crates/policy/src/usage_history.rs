//! The usage history of an account: a small rolling series per window ([`UsageSeries`], at
//! most [`MAX_SAMPLES`] points, one per [`MIN_SPACING_MS`] at most), fed by every observation
//! (headers, stream events, the usage endpoint) through [`record`]. A window that went down (it
//! reset) starts a new series. Pure; the forecasts read it ([`super::forecast`]).

use serde::{Deserialize, Serialize};

/// Most points kept per window.
pub const MAX_SAMPLES: usize = 48;

/// Points closer than this to the previous one replace the newest point instead of adding one.
pub const MIN_SPACING_MS: i64 = 60_000;

/// A drop of more than this many points means the window reset: the series starts again.
const RESET_DROP: f64 = 1.0;

/// One observation of one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub at_ms: i64,
    pub used_percent: f64,
}

/// The recent history of one window (family + slot) of one account, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageSeries {
    pub family: String,
    pub slot: String,
    #[serde(default)]
    pub samples: Vec<Sample>,
}

/// Add what each window (family, slot, used percent) says at `at_ms` to `history`.
pub fn record<'w>(
    history: &mut Vec<UsageSeries>,
    windows: impl IntoIterator<Item = (&'w str, &'w str, f64)>,
    at_ms: i64,
) {
    for (family, slot, used) in windows {
        let pos = history
            .iter()
            .position(|s| s.family == family && s.slot == slot);
        let series = match pos {
            Some(i) => &mut history[i],
            None => {
                history.push(UsageSeries {
                    family: family.to_string(),
                    slot: slot.to_string(),
                    samples: Vec::new(),
                });
                let last = history.len() - 1;
                &mut history[last]
            }
        };
        push(&mut series.samples, at_ms, used);
    }
}

fn push(samples: &mut Vec<Sample>, at_ms: i64, used: f64) {
    if !used.is_finite() {
        return;
    }
    // Observations arrive out of order only by a little (concurrent answers): ignore older ones.
    if samples.last().is_some_and(|l| at_ms < l.at_ms) {
        return;
    }
    if samples
        .last()
        .is_some_and(|l| used < l.used_percent - RESET_DROP)
    {
        samples.clear();
    }
    let s = Sample {
        at_ms,
        used_percent: used,
    };
    let n = samples.len();
    if n >= 2 && at_ms - samples[n - 2].at_ms < MIN_SPACING_MS {
        samples[n - 1] = s;
    } else {
        samples.push(s);
    }
    if samples.len() > MAX_SAMPLES {
        let extra = samples.len() - MAX_SAMPLES;
        samples.drain(..extra);
    }
}
