//! Which numbers are on WhatsApp, as a device asks: answers are kept an hour per device,
//! so a caller checking the same list again costs the network nothing, and only the
//! numbers not known are asked, all in one query.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::ids::PhoneNumber;
use crate::network::{AccountId, Network, NetworkError, NumberCheck};

/// How long an answer is reused. Numbers join and leave WhatsApp rarely.
const KEPT: Duration = Duration::from_secs(3600);
/// Beyond this many answers, expired ones are dropped at the next insert.
const PRUNE_ABOVE: usize = 50_000;

#[derive(Default)]
pub struct CheckedNumbers {
    answers: Mutex<HashMap<(AccountId, PhoneNumber), (NumberCheck, Instant)>>,
}

impl CheckedNumbers {
    /// Each of `phones`, in order: from the answers kept, the rest asked of the network
    /// in one query.
    pub async fn check(
        &self,
        network: &dyn Network,
        account: &AccountId,
        phones: &[PhoneNumber],
    ) -> Result<Vec<NumberCheck>, NetworkError> {
        let now = Instant::now();
        let known = |answers: &HashMap<(AccountId, PhoneNumber), (NumberCheck, Instant)>, phone: &PhoneNumber| {
            let kept = answers.get(&(account.clone(), phone.clone()));
            kept.filter(|(_, at)| now.duration_since(*at) < KEPT).map(|(check, _)| check.clone())
        };
        let unknown: Vec<PhoneNumber> = {
            let answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
            let mut unknown: Vec<PhoneNumber> =
                phones.iter().filter(|p| known(&answers, p).is_none()).cloned().collect();
            unknown.sort();
            unknown.dedup();
            unknown
        };
        let asked = if unknown.is_empty() { Vec::new() } else { network.check_numbers(account, &unknown).await? };
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        if answers.len() > PRUNE_ABOVE {
            answers.retain(|_, (_, at)| now.duration_since(*at) < KEPT);
        }
        for check in asked {
            answers.insert((account.clone(), check.phone.clone()), (check, now));
        }
        phones
            .iter()
            .map(|phone| known(&answers, phone).ok_or_else(|| NetworkError::Refused(format!("no answer for {phone}"))))
            .collect()
    }
}
