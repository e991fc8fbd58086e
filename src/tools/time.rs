//! `time`: the current date and time in the owner's timezone
//! (`agent.timezone`, an IANA name; empty means the machine's).

use serde_json::{Value, json};

use super::{Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};

pub(crate) struct Time;

use crate::vocab::owner_timezone;

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

    /// The clock is Hermit's own: trusted.
    fn output_origin(&self, _: &Value) -> Option<crate::vocab::Origin> {
        None
    }

    fn run_in(
        &self,
        ctx: &ToolContext,
        _: &Value,
        _: &super::CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let tz = owner_timezone(&ctx.timezone).map_err(|m| ToolError::failed("time", m))?;
        let now = jiff::Timestamp::now().to_zoned(tz);
        Ok(ToolOutput {
            own: false,
            ok: true,
            content: now
                .strftime("%A %-d %B %Y, %H:%M:%S %Z (UTC%:z)")
                .to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timezones_by_name() {
        assert!(super::owner_timezone("Europe/Paris").is_ok());
        assert!(super::owner_timezone("").is_ok());
        assert!(
            super::owner_timezone("Mars/Olympus")
                .unwrap_err()
                .contains("IANA")
        );
    }
}
