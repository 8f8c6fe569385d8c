//! The job store's rule for ended jobs, without I/O: they stay listed for
//! `jobstore.expiration-time` after they ended, and when more than
//! `jobstore.max-capacity` have ended the oldest go first. The shell applies
//! it on its tick.

use crate::ids::JobId;
use std::time::Duration;

/// The ended jobs (with their end times) that leave the store at `now_ms`.
pub fn expired(mut ended: Vec<(i64, JobId)>, now_ms: i64, expiration: Duration, capacity: usize) -> Vec<JobId> {
    let expiration = i64::try_from(expiration.as_millis()).unwrap_or(i64::MAX);
    ended.sort_unstable();
    let over = ended.len().saturating_sub(capacity);
    ended
        .into_iter()
        .enumerate()
        .filter(|(i, (end, _))| *i < over || now_ms.saturating_sub(*end) > expiration)
        .map(|(_, (_, id))| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ended_jobs_go_after_the_expiration_and_beyond_the_capacity_oldest_first() {
        let ids: Vec<JobId> = (0..4).map(|_| JobId::random()).collect();
        let ended = vec![(400, ids[3]), (100, ids[0]), (300, ids[2]), (200, ids[1])];
        let hour = Duration::from_secs(3600);
        assert_eq!(expired(ended.clone(), 1000, hour, 10), Vec::<JobId>::new());
        assert_eq!(expired(ended.clone(), 1000, hour, 2), vec![ids[0], ids[1]]);
        assert_eq!(expired(ended.clone(), 250 + 3_600_000, hour, 10), vec![ids[0], ids[1]]);
        assert_eq!(expired(ended, 3_600_300, hour, 10), vec![ids[0], ids[1]], "exactly the expiration is not past it");
    }
}
