//! Rotation schedules: `AutomaticallyAfterDays`, `rate(...)` and
//! `cron(...)`, and when each next fires.
//!
//! The service rotates no more often than every four hours. The emulator
//! keeps that rule unless short schedules are allowed at start, and then
//! also accepts `rate(N seconds)` so tests see a rotation within seconds.
//! The rotation window (`Duration`) is checked but rotations start at its
//! beginning. The four-hour rule is not checked for `cron(...)`.

use time::{Date, OffsetDateTime};

use crate::error::ApiError;
use crate::model::RotationRules;

const MIN_RATE_SECS: u64 = 4 * 3600;
const MAX_RATE_DAYS: u64 = 999;

/// When a secret rotates.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// Every N seconds after the last rotation.
    Every(u64),
    /// At the times a cron expression matches.
    Cron(Box<Cron>),
}

impl Schedule {
    /// Parses and checks rotation rules.
    pub fn from_rules(rules: &RotationRules, allow_short: bool) -> Result<Schedule, ApiError> {
        if let Some(duration) = &rules.duration {
            check_window(duration)?;
        }
        match (rules.automatically_after_days, &rules.schedule_expression) {
            (Some(_), Some(_)) => Err(ApiError::invalid_parameter(
                "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.",
            )),
            (Some(days), None) if !(1..=1000).contains(&days) => Err(ApiError::invalid_parameter(
                "RotationRules.AutomaticallyAfterDays must be within 1-1000.",
            )),
            (Some(days), None) => Ok(Schedule::Every(days.unsigned_abs() * 86_400)),
            (None, Some(expression)) => parse_expression(expression, allow_short),
            (None, None) => Err(ApiError::invalid_parameter(
                "RotationRules must contain AutomaticallyAfterDays or ScheduleExpression.",
            )),
        }
    }

    /// Returns the first rotation time after `after` (epoch seconds).
    pub fn next_after(&self, after: f64) -> f64 {
        match self {
            Schedule::Every(secs) => after + *secs as f64,
            Schedule::Cron(cron) => cron.next_after(after),
        }
    }
}

fn check_window(duration: &str) -> Result<(), ApiError> {
    let hours = duration
        .strip_suffix('h')
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|h| (1..=24).contains(h));
    match hours {
        Some(_) => Ok(()),
        None => Err(ApiError::invalid_parameter(format!(
            "The rotation window Duration '{duration}' is not valid; use 1h to 24h."
        ))),
    }
}

fn parse_expression(expression: &str, allow_short: bool) -> Result<Schedule, ApiError> {
    let invalid = || {
        ApiError::invalid_parameter(format!(
            "The schedule expression '{expression}' is not valid; use rate(N hours|days) or cron(minutes hours day-of-month month day-of-week year)."
        ))
    };
    let inner = |prefix: &str| {
        expression
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(')'))
    };

    if let Some(rate) = inner("rate(") {
        let (count, unit) = rate.trim().split_once(' ').ok_or_else(invalid)?;
        let count: u64 = count.parse().map_err(|_| invalid())?;
        let unit_secs = match unit.trim() {
            "second" | "seconds" if allow_short => 1,
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            _ => return Err(invalid()),
        };
        let secs = count * unit_secs;
        if secs == 0 || secs > MAX_RATE_DAYS * 86_400 {
            return Err(invalid());
        }
        if secs < MIN_RATE_SECS && !allow_short {
            return Err(ApiError::invalid_parameter(format!(
                "The schedule expression '{expression}' rotates more often than every four hours, which Secrets Manager does not allow. The emulator accepts it only when started with --allow-short-schedules."
            )));
        }
        return Ok(Schedule::Every(secs));
    }
    if let Some(fields) = inner("cron(") {
        return Cron::parse(fields)
            .map(|c| Schedule::Cron(Box::new(c)))
            .ok_or_else(invalid);
    }
    Err(invalid())
}

/// An AWS cron expression: minutes, hours, day of month, month, day of week
/// (1 = Sunday) and year. Supports `*`, `?`, lists, ranges, steps and
/// month and day names; not `L`, `W` or `#`.
#[derive(Debug, Clone, PartialEq)]
pub struct Cron {
    minutes: Vec<u32>,
    hours: Vec<u32>,
    days_of_month: Option<Vec<u32>>,
    months: Vec<u32>,
    days_of_week: Option<Vec<u32>>,
    years: Option<Vec<u32>>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

impl Cron {
    fn parse(fields: &str) -> Option<Cron> {
        let fields: Vec<&str> = fields.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return None;
        };
        let days_of_month = field(dom, 1, 31, &[])?;
        let days_of_week = field(dow, 1, 7, &WEEKDAYS)?;
        // One of the two day fields must be "?", as in AWS cron.
        if (dom == "?") == (dow == "?") {
            return None;
        }
        Some(Cron {
            minutes: field(minutes, 0, 59, &[])??,
            hours: field(hours, 0, 23, &[])??,
            days_of_month,
            months: field(month, 1, 12, &MONTHS)??,
            days_of_week,
            years: field(year, 1970, 2199, &[])?,
        })
    }

    fn matches_day(&self, date: Date) -> bool {
        let in_list = |list: &Option<Vec<u32>>, value: u32| {
            list.as_ref().is_none_or(|values| values.contains(&value))
        };
        let weekday = date.weekday().number_days_from_sunday() as u32 + 1;
        self.months.contains(&(u8::from(date.month()) as u32))
            && in_list(&self.days_of_month, date.day() as u32)
            && in_list(&self.days_of_week, weekday)
            && in_list(&self.years, date.year().unsigned_abs())
    }

    /// Returns the first matching minute strictly after `after`, or ten
    /// years on when nothing matches within ten years.
    pub fn next_after(&self, after: f64) -> f64 {
        let start =
            OffsetDateTime::from_unix_timestamp(after as i64).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let mut date = start.date();
        for _ in 0..3660 {
            if self.matches_day(date) {
                for &hour in &self.hours {
                    for &minute in &self.minutes {
                        let Ok(time) = time::Time::from_hms(hour as u8, minute as u8, 0) else {
                            continue;
                        };
                        let candidate = date.with_time(time).assume_utc().unix_timestamp() as f64;
                        if candidate > after {
                            return candidate;
                        }
                    }
                }
            }
            let Some(next) = date.next_day() else { break };
            date = next;
        }
        after + 3660.0 * 86_400.0
    }
}

/// Parses one cron field into its sorted values; `Some(None)` for `*` or `?`
/// in a day field, meaning any.
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Option<Option<Vec<u32>>> {
    if text == "?" || (text == "*" && min != 0 && (max == 31 || max == 7 || max == 2199)) {
        return Some(None);
    }
    let value = |s: &str| -> Option<u32> {
        names
            .iter()
            .position(|n| n.eq_ignore_ascii_case(s))
            .map(|i| i as u32 + 1)
            .or_else(|| s.parse().ok())
            .filter(|v| (min..=max).contains(v))
    };
    let mut values = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().ok().filter(|s| *s > 0)?),
            None => (part, 1),
        };
        let (low, high) = match range {
            "*" => (min, max),
            _ => match range.split_once('-') {
                Some((low, high)) => (value(low)?, value(high)?),
                None if part.contains('/') => (value(range)?, max),
                None => (value(range)?, value(range)?),
            },
        };
        values.extend((low..=high).step_by(step as usize));
    }
    values.sort_unstable();
    values.dedup();
    Some(Some(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_with(expression: &str) -> RotationRules {
        RotationRules {
            schedule_expression: Some(expression.to_owned()),
            ..Default::default()
        }
    }

    #[test]
    fn rate_below_four_hours_needs_short_schedules() {
        let rules = rules_with("rate(10 seconds)");
        assert!(Schedule::from_rules(&rules, false).is_err());
        assert_eq!(
            Schedule::from_rules(&rules, true).unwrap(),
            Schedule::Every(10)
        );
        let rules = rules_with("rate(1 hour)");
        assert!(Schedule::from_rules(&rules, false).is_err());
        let rules = rules_with("rate(4 hours)");
        assert_eq!(
            Schedule::from_rules(&rules, false).unwrap(),
            Schedule::Every(14_400)
        );
    }

    #[test]
    fn days_out_of_range_are_rejected() {
        let rules = RotationRules {
            automatically_after_days: Some(0),
            ..Default::default()
        };
        let error = Schedule::from_rules(&rules, false).unwrap_err();
        assert_eq!(error.kind, "InvalidParameterException");
    }

    #[test]
    fn cron_fires_at_the_next_matching_minute() {
        // Friday 2025-01-03 10:30:00 UTC.
        let after = 1_735_900_200.0;
        let daily = Schedule::from_rules(&rules_with("cron(0 12 * * ? *)"), false).unwrap();
        assert_eq!(daily.next_after(after), 1_735_905_600.0);
        let mondays = Schedule::from_rules(&rules_with("cron(0 8 ? * MON *)"), false).unwrap();
        // Monday 2025-01-06 08:00:00 UTC.
        assert_eq!(mondays.next_after(after), 1_736_150_400.0);
    }

    #[test]
    fn cron_needs_a_question_mark_in_one_day_field() {
        let rules = rules_with("cron(0 12 * * * *)");
        assert!(Schedule::from_rules(&rules, false).is_err());
    }
}
