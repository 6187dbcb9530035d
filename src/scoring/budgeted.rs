//! libtorch scoring within a memory budget: batches planned against the budget, frames
//! split into bands when one does not fit, and recovery from allocation failures: halve
//! the batch, then band finer, and retry the same pairs; climb back after a few good
//! batches, so that a steady rate of recoverable failures never ends the stream.

use super::budget::{Plan, plan, whole_frame_bytes};
use super::torch::TorchScorer;
use super::{Error, ImageView, Options, Recovery, Scored, Usage, planes_for};

/// Successful batches after which a reduced batch or band size is doubled again.
const GROW_AFTER: u32 = 4;

/// Failures in a row of the smallest unit (one pair, one-row bands) before giving up.
pub const SMALLEST_ATTEMPTS: u32 = 3;

pub struct BudgetedScorer {
    pub torch: TorchScorer,
    batch_cap: Option<usize>,
    band_cap: Option<usize>,
    successes: u32,
    /// Allocation failures recovered from.
    pub recoveries: u64,
    /// The largest working memory of any batch so far.
    pub peak_bytes: u64,
}

/// Samples compared per pair, and the widest and tallest compared plane.
fn layout(view: &ImageView<'_>, opts: &Options) -> (u64, usize, usize) {
    planes_for(view.kind, opts.channels)
        .into_iter()
        .map(|s| view.geometry(s))
        .fold((0, 0, 0), |(n, w, h), g| {
            (
                n + (g.width * g.height) as u64,
                w.max(g.width),
                h.max(g.height),
            )
        })
}

impl BudgetedScorer {
    pub fn new(torch: TorchScorer) -> Self {
        BudgetedScorer {
            torch,
            batch_cap: None,
            band_cap: None,
            successes: 0,
            recoveries: 0,
            peak_bytes: 0,
        }
    }

    /// Scores `pairs` in order, up to `wanted` at a time, within `budget` bytes (0 =
    /// unlimited). Every pair is scored exactly once; `on_recovery` hears of each
    /// allocation failure recovered from.
    pub fn score(
        &mut self,
        pairs: &[(ImageView<'_>, ImageView<'_>)],
        opts: &Options,
        wanted: usize,
        budget: u64,
        mut on_recovery: impl FnMut(&Recovery),
    ) -> Result<Vec<Scored>, Error> {
        let mut out = Vec::with_capacity(pairs.len());
        // Failures of the smallest unit for the pair at `out.len()`.
        let mut smallest_failures = 0;
        while out.len() < pairs.len() {
            let start = out.len();
            let (pixels, width, height) = layout(&pairs[start].0, opts);
            let batch = wanted
                .min(self.batch_cap.unwrap_or(usize::MAX))
                .min(pairs.len() - start);
            let planned = plan(
                pixels,
                width,
                batch,
                budget,
                opts.metrics.ms_ssim,
                self.band_cap,
            )
            .map_err(Error::Budget)?;
            let attempt = match planned.band_rows {
                None => {
                    let chunk = &pairs[start..start + planned.batch];
                    let usage = Usage {
                        tiles: 1,
                        bytes: whole_frame_bytes(pixels, chunk.len(), opts.metrics.ms_ssim),
                        batch: chunk.len(),
                    };
                    self.torch.score_batch(chunk, opts).map(|scores| {
                        scores
                            .into_iter()
                            .map(|scores| Scored { scores, usage })
                            .collect::<Vec<_>>()
                    })
                }
                Some(rows) => {
                    let (r, d) = &pairs[start];
                    self.torch
                        .score_banded(r, d, opts, rows)
                        .map(|(scores, usage)| vec![Scored { scores, usage }])
                }
            };
            match attempt {
                Ok(scored) => {
                    for s in &scored {
                        self.peak_bytes = self.peak_bytes.max(s.usage.bytes);
                    }
                    out.extend(scored);
                    smallest_failures = 0;
                    self.grow(wanted, height);
                }
                Err(e) if e.is_out_of_memory() => {
                    let retry = match self.shrink(planned, height) {
                        Some(retry) => retry,
                        None => {
                            smallest_failures += 1;
                            if smallest_failures >= SMALLEST_ATTEMPTS {
                                return Err(Error::Backend(format!(
                                    "out of memory {SMALLEST_ATTEMPTS} times in a row on the \
                                     same frame, even in the smallest bands (one row): {e}"
                                )));
                            }
                            planned
                        }
                    };
                    self.recoveries += 1;
                    on_recovery(&Recovery {
                        error: e.to_string(),
                        retry,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// After a failure: half the batch, else bands (half the frame, then half the band).
    fn shrink(&mut self, failed: Plan, height: usize) -> Option<Plan> {
        self.successes = 0;
        let retry = match failed.band_rows {
            None if failed.batch > 1 => {
                let batch = failed.batch / 2;
                self.batch_cap = Some(batch);
                Plan {
                    batch,
                    band_rows: None,
                }
            }
            None => {
                let rows = (height.saturating_sub(super::budget::HALO) / 2).max(1);
                self.band_cap = Some(rows);
                Plan {
                    batch: 1,
                    band_rows: Some(rows),
                }
            }
            Some(rows) if rows > 1 => {
                self.band_cap = Some(rows / 2);
                Plan {
                    batch: 1,
                    band_rows: Some(rows / 2),
                }
            }
            Some(_) => return None,
        };
        Some(retry)
    }

    /// After enough successes: double what a failure reduced, back to no limit.
    fn grow(&mut self, wanted: usize, height: usize) {
        self.successes += 1;
        if self.successes < GROW_AFTER {
            return;
        }
        self.successes = 0;
        if let Some(rows) = self.band_cap {
            self.band_cap = (rows * 2 < height).then_some(rows * 2);
        } else if let Some(b) = self.batch_cap {
            self.batch_cap = Some(b * 2).filter(|&cap| cap < wanted);
        }
    }
}
