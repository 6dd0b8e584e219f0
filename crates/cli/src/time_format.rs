//! Time formatting shared by the commands.

use std::time::SystemTime;

/// Formats an instant as RFC 3339 in UTC, to the second.
pub fn rfc3339(instant: SystemTime) -> String {
    let seconds = match instant.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|datetime| {
            datetime
                .format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| String::from("(out of range)"))
}

/// Describes an instant relative to now: `in 3h 57m` or `2m 5s ago`.
pub fn age(instant: SystemTime, now: SystemTime) -> String {
    match instant.duration_since(now) {
        Ok(ahead) => format!("in {}", span(ahead.as_secs())),
        Err(behind) => format!("{} ago", span(behind.duration().as_secs())),
    }
}

fn span(seconds: u64) -> String {
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_drops_sub_seconds() {
        let instant = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(rfc3339(instant), "1970-01-01T00:00:01Z");
    }

    #[test]
    fn rfc3339_of_a_far_future_instant_does_not_panic() {
        let instant = SystemTime::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339(instant), "(out of range)");
    }

    #[test]
    fn age_reads_both_ways() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(age(now + Duration::from_secs(3_720), now), "in 1h 2m");
        assert_eq!(age(now - Duration::from_secs(65), now), "1m 5s ago");
    }
}
