//! What the durable queues (`inbox`, `outbox`) share: when a row is tried again, and how
//! a backlog splits into lanes that keep their own order.

use std::collections::HashMap;
use std::hash::Hash;

/// `rows`, in order, split by `key` into lanes; lanes come in the order of their first row.
pub fn lanes<K: Eq + Hash + Clone, T>(rows: Vec<T>, key: impl Fn(&T) -> K) -> Vec<(K, Vec<T>)> {
    let mut order = Vec::new();
    let mut lanes: HashMap<K, Vec<T>> = HashMap::new();
    for row in rows {
        let lane = key(&row);
        if !lanes.contains_key(&lane) {
            order.push(lane.clone());
        }
        lanes.entry(lane).or_default().push(row);
    }
    order
        .into_iter()
        .map(|lane| {
            let rows = lanes.remove(&lane).unwrap_or_default();
            (lane, rows)
        })
        .collect()
}

/// Runs `attempt` in the background, with [`backoff_ms`] between tries, until it succeeds.
pub fn keep_trying<F, Fut>(mut attempt: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    tokio::spawn(async move {
        for attempts in 1.. {
            tokio::time::sleep(std::time::Duration::from_millis(backoff_ms(attempts) as u64)).await;
            if attempt().await {
                break;
            }
        }
    });
}

/// Exponential backoff from one second, capped at a minute, with jitter so that rows
/// failed together do not retry together.
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
    fn lanes_keep_the_order_of_their_rows() {
        let rows = vec![("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)];
        let lanes = lanes(rows, |(lane, _)| *lane);
        let numbers: Vec<(&str, Vec<i32>)> =
            lanes.into_iter().map(|(lane, rows)| (lane, rows.into_iter().map(|(_, n)| n).collect())).collect();
        assert_eq!(numbers, [("a", vec![1, 3]), ("b", vec![2, 5]), ("c", vec![4])]);
    }

    #[test]
    fn backoff_doubles_then_stays_at_a_minute() {
        for (attempts, nominal) in [(1, 1_000), (2, 2_000), (4, 8_000), (7, 60_000), (500, 60_000)] {
            let delay = backoff_ms(attempts);
            assert!(delay >= nominal * 3 / 4 && delay < nominal * 5 / 4, "{attempts}: {delay}");
        }
    }
}
