//! Support-vector regression as libsvm writes its models: the text after a VMAF model's
//! `"model"` key (`svm_type nu_svr`, `kernel_type rbf`, `gamma`, `rho`, then one support
//! vector per line after `SV`, its coefficient first, then `index:value` pairs).

use super::ModelError;

/// An ε- or ν-SVR with a radial basis function kernel: the prediction for `x` is
/// Σ coefᵢ · exp(−γ‖x − svᵢ‖²) − ρ.
#[derive(Clone, Debug, PartialEq)]
pub struct Svr {
    gamma: f64,
    rho: f64,
    /// Each support vector's coefficient and dense components (absent indices are 0).
    vectors: Vec<(f64, Vec<f64>)>,
}

impl Svr {
    /// Parses a libsvm model of `dims`-dimensional inputs.
    pub fn parse(text: &str, dims: usize) -> Result<Self, ModelError> {
        let bad = |what: String| ModelError::Invalid(format!("its SVM: {what}"));
        let mut lines = text.lines();
        let (mut gamma, mut rho, mut total) = (None, None, None);
        for line in lines.by_ref() {
            let mut words = line.split_whitespace();
            let (Some(key), value) = (words.next(), words.next()) else {
                continue;
            };
            let number = || {
                value
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| bad(format!("'{line}' has no number")))
            };
            match key {
                "svm_type" if !matches!(value, Some("nu_svr" | "epsilon_svr")) => {
                    return Err(bad(format!("type {value:?} is not a regression")));
                }
                "kernel_type" if value != Some("rbf") => {
                    return Err(bad(format!("kernel {value:?} is not supported (only rbf)")));
                }
                "gamma" => gamma = Some(number()?),
                "rho" => rho = Some(number()?),
                "total_sv" => total = Some(number()? as usize),
                "SV" => break,
                _ => {}
            }
        }
        let (Some(gamma), Some(rho)) = (gamma, rho) else {
            return Err(bad("gamma or rho is missing".into()));
        };
        let mut vectors = Vec::with_capacity(total.unwrap_or(0));
        for line in lines.filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let coef = words
                .next()
                .and_then(|c| c.parse::<f64>().ok())
                .ok_or_else(|| bad(format!("support vector '{line}' has no coefficient")))?;
            let mut v = vec![0.0; dims];
            for pair in words {
                let parsed = pair
                    .split_once(':')
                    .and_then(|(i, x)| Some((i.parse::<usize>().ok()?, x.parse::<f64>().ok()?)));
                match parsed {
                    Some((i, x)) if (1..=dims).contains(&i) => v[i - 1] = x,
                    _ => return Err(bad(format!("'{pair}' is not an index from 1 to {dims}"))),
                }
            }
            vectors.push((coef, v));
        }
        if vectors.is_empty() || total.is_some_and(|t| t != vectors.len()) {
            return Err(bad(format!(
                "{} support vectors where total_sv says {total:?}",
                vectors.len()
            )));
        }
        Ok(Svr {
            gamma,
            rho,
            vectors,
        })
    }

    pub fn predict(&self, x: &[f64]) -> f64 {
        let sum: f64 = self
            .vectors
            .iter()
            .map(|(coef, sv)| {
                let d2: f64 = sv.iter().zip(x).map(|(a, b)| (a - b) * (a - b)).sum();
                coef * (-self.gamma * d2).exp()
            })
            .sum();
        sum - self.rho
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "svm_type nu_svr\nkernel_type rbf\ngamma 0.5\nnr_class 2\n\
                       total_sv 2\nrho 0.25\nSV\n2 1:1 2:0\n-1 2:1\n";

    #[test]
    fn predicts_the_kernel_sum_less_rho() {
        let svr = Svr::parse(TWO, 2).unwrap();
        let x = [0.5, 0.5];
        // ‖x − (1, 0)‖² = ‖x − (0, 1)‖² = 0.5.
        let want = 2.0 * (-0.25f64).exp() - (-0.25f64).exp() - 0.25;
        assert!((svr.predict(&x) - want).abs() < 1e-15);
        assert!((svr.predict(&[1.0, 0.0]) - (2.0 - (-1f64).exp() - 0.25)).abs() < 1e-15);
    }

    #[test]
    fn refuses_what_it_cannot_evaluate() {
        let err = |t: &str| Svr::parse(t, 2).unwrap_err().to_string();
        assert!(err(&TWO.replace("rbf", "linear")).contains("only rbf"));
        assert!(err(&TWO.replace("nu_svr", "c_svc")).contains("not a regression"));
        assert!(err(&TWO.replace("2:1", "3:1")).contains("index from 1 to 2"));
        assert!(err(&TWO.replace("total_sv 2", "total_sv 3")).contains("total_sv"));
        assert!(err(&TWO.replace("gamma 0.5\n", "")).contains("gamma"));
    }
}
