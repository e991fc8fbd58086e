//! Hermit's clock and the owner's timezone.

/// Hermit's clock, in milliseconds since the Unix epoch: the system's,
/// moved by `HERMIT_CLOCK_OFFSET_SECONDS` when set (a signed number of
/// seconds). The offset lets a test (or someone checking how Hermit will
/// behave next week) run Hermit days ahead; every timestamp Hermit writes
/// and every expiry it checks reads this clock.
pub fn now_ms() -> i64 {
    system_now_ms() + clock_offset_ms()
}

/// The system's clock, never moved: for comparing with timestamps made by
/// others' clocks (the homeserver stamps every Matrix event with its own),
/// such as how old an approval is.
pub fn system_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// [`now_ms`] in seconds.
pub fn now() -> i64 {
    now_ms().div_euclid(1000)
}

fn clock_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        match std::env::var("HERMIT_CLOCK_OFFSET_SECONDS") {
            Ok(v) => match v.trim().parse::<i64>() {
                Ok(s) => {
                    tracing::warn!(seconds = s, "the clock is moved by HERMIT_CLOCK_OFFSET_SECONDS");
                    s.saturating_mul(1000)
                }
                Err(_) => {
                    tracing::warn!(value = %v, "HERMIT_CLOCK_OFFSET_SECONDS is not a number of seconds; ignored");
                    0
                }
            },
            Err(_) => 0,
        }
    })
}

/// The owner's timezone: `name`, or the machine's when empty.
pub fn owner_timezone(name: &str) -> Result<jiff::tz::TimeZone, String> {
    if name.trim().is_empty() {
        return Ok(jiff::tz::TimeZone::system());
    }
    jiff::tz::TimeZone::get(name.trim()).map_err(|e| {
        format!("unknown timezone {name:?} ({e}); use an IANA name such as \"Europe/Paris\"")
    })
}
