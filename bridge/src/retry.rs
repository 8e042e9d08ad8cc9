//! When a durable queue tries again: exponential backoff from one second, capped at a
//! minute, with jitter so that rows failed together do not retry together.

/// Milliseconds to wait after the `attempts`-th failure.
pub fn backoff_ms(attempts: i64) -> i64 {
    const BASE_MS: i64 = 1_000;
    const CAP_MS: i64 = 60_000;
    let exponent = u32::try_from(attempts.saturating_sub(1)).unwrap_or(0).min(16);
    let delay = BASE_MS.saturating_mul(1 << exponent).min(CAP_MS) as f64;
    (delay * rand::random_range(0.75..1.25)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_stays_at_a_minute() {
        for (attempts, nominal) in [(1, 1_000), (2, 2_000), (4, 8_000), (7, 60_000), (500, 60_000)] {
            let delay = backoff_ms(attempts);
            assert!(delay >= nominal * 3 / 4 && delay < nominal * 5 / 4, "{attempts}: {delay}");
        }
    }
}
