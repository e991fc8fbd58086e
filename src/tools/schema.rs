//! A small JSON Schema validator for the tools' own argument schemas: the
//! subset they use (`object` with `properties`, `required`,
//! `additionalProperties: false`; `string` with `enum`, `maxLength`;
//! `integer` with `minimum`/`maximum`; `boolean`). A schema using anything
//! else is a programming error caught by the tests.

use serde_json::Value;

pub(crate) fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "arguments")
}

fn check(schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let ty = schema.get("type").and_then(Value::as_str).unwrap_or("any");
    match ty {
        "object" => {
            let obj = value
                .as_object()
                .ok_or_else(|| format!("{at} must be an object"))?;
            let props = schema.get("properties").and_then(Value::as_object);
            if let Some(required) = schema.get("required").and_then(Value::as_array) {
                for r in required.iter().filter_map(Value::as_str) {
                    if !obj.contains_key(r) {
                        return Err(format!("{at}.{r} is required"));
                    }
                }
            }
            for (k, v) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check(s, v, &format!("{at}.{k}"))?,
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        return Err(format!("{at}.{k} is not a known argument"));
                    }
                    None => {}
                }
            }
        }
        "string" => {
            let s = value
                .as_str()
                .ok_or_else(|| format!("{at} must be a string"))?;
            if let Some(options) = schema.get("enum").and_then(Value::as_array)
                && !options.iter().any(|o| o.as_str() == Some(s))
            {
                return Err(format!(
                    "{at} must be one of {}",
                    Value::Array(options.clone())
                ));
            }
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && s.chars().count() as u64 > max
            {
                return Err(format!("{at} is longer than {max} characters"));
            }
        }
        "integer" => {
            let n = value
                .as_i64()
                .ok_or_else(|| format!("{at} must be an integer"))?;
            if let Some(min) = schema.get("minimum").and_then(Value::as_i64)
                && n < min
            {
                return Err(format!("{at} must be at least {min}"));
            }
            if let Some(max) = schema.get("maximum").and_then(Value::as_i64)
                && n > max
            {
                return Err(format!("{at} must be at most {max}"));
            }
        }
        "boolean" => {
            value
                .as_bool()
                .ok_or_else(|| format!("{at} must be true or false"))?;
        }
        "any" => {}
        other => return Err(format!("unsupported schema type {other} at {at}")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;
    use serde_json::json;

    #[test]
    fn object_schema_rules() {
        let s = json!({"type": "object", "additionalProperties": false, "required": ["op"],
            "properties": {"op": {"type": "string", "enum": ["a", "b"]}, "n": {"type": "integer", "minimum": 1}}});
        assert!(validate(&s, &json!({"op": "a"})).is_ok());
        assert!(
            validate(&s, &json!({"op": "c"}))
                .unwrap_err()
                .contains("one of")
        );
        assert!(validate(&s, &json!({})).unwrap_err().contains("required"));
        assert!(
            validate(&s, &json!({"op": "a", "x": 1}))
                .unwrap_err()
                .contains("not a known")
        );
        assert!(
            validate(&s, &json!({"op": "a", "n": 0}))
                .unwrap_err()
                .contains("at least")
        );
        assert!(validate(&s, &json!("a")).is_err());
    }
}
