//! `time`: the current date and time, in the machine's local timezone.

use serde_json::{Value, json};

use super::{Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};

pub struct Time;

impl Tool for Time {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "time",
            description: "The current date and time in the owner's timezone.",
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        }
    }

    fn effects(&self, _: &Value) -> Vec<Effect> {
        vec![Effect::Read]
    }

    fn run(&self, _: &ToolContext, _: &Value) -> Result<ToolOutput, ToolError> {
        // localtime_r honours TZ and /etc/localtime without a timezone crate.
        let now = unsafe { libc::time(std::ptr::null_mut()) };
        // SAFETY: zeroed tm is valid; localtime_r fills it.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if unsafe { libc::localtime_r(&now, &mut tm) }.is_null() {
            return Err(ToolError::Failed {
                tool: "time".into(),
                message: "localtime failed".into(),
            });
        }
        const DAYS: [&str; 7] = [
            "Sunday",
            "Monday",
            "Tuesday",
            "Wednesday",
            "Thursday",
            "Friday",
            "Saturday",
        ];
        let offset = tm.tm_gmtoff / 60;
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            // SAFETY: tm_zone points to a NUL-terminated static string.
            unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
                .to_string_lossy()
                .into_owned()
        };
        Ok(ToolOutput {
            ok: true,
            content: format!(
                "{} {:04}-{:02}-{:02} {:02}:{:02}:{:02} {} (UTC{}{:02}:{:02})",
                DAYS[tm.tm_wday.clamp(0, 6) as usize],
                tm.tm_year + 1900,
                tm.tm_mon + 1,
                tm.tm_mday,
                tm.tm_hour,
                tm.tm_min,
                tm.tm_sec,
                zone,
                if offset < 0 { '-' } else { '+' },
                offset.abs() / 60,
                offset.abs() % 60
            ),
        })
    }
}
