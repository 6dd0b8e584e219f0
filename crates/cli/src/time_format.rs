//! Time formatting shared by the commands.

use std::time::SystemTime;

/// Formats an instant as RFC 3339 in UTC, to the second.
pub fn rfc3339(instant: SystemTime) -> String {
    let truncated = time::OffsetDateTime::from(instant)
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    truncated
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| String::from("(out of range)"))
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
