//! `calculate`: arithmetic and unit conversions, computed by Hermit (a
//! small model's own arithmetic is unreliable, and a `shell` call for it
//! asks the owner for nothing). Pure: it reads nothing, writes nothing,
//! never asks.
//!
//! Expressions: numbers, `+ - * / ^ %`, parentheses, `sqrt(x)`, and the
//! words people use (`17 times 23`, `15% of 80`, `12 fois 8`, `the square
//! root of 144`). Conversions: `5 miles in km`, `100 F to C`, `70 kg en
//! livres` (length, mass, volume, temperature, speed).

use serde_json::{Value, json};

use super::{Effect, Tool, ToolContext, ToolError, ToolOutput, ToolSpec, arg_str};

pub(crate) struct Calculate;

impl Tool for Calculate {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "calculate",
            description: "Compute arithmetic or convert units exactly. Examples: \"17*23\", \"15% of 80\", \"(3+4)/2\", \"sqrt(144)\", \"5 miles in km\", \"100 F in C\".",
            parameters: json!({
                "type": "object",
                "properties": {
                    "expression": {"type": "string", "description": "The calculation or conversion", "maxLength": 200}
                },
                "required": ["expression"],
                "additionalProperties": false
            }),
        }
    }

    fn effects(&self, _: &Value) -> Vec<Effect> {
        vec![Effect::Read]
    }

    /// Hermit's own arithmetic: trusted.
    fn output_origin(&self, _: &Value) -> Option<crate::vocab::Origin> {
        None
    }

    fn run_in(
        &self,
        _: &ToolContext,
        args: &Value,
        _: &super::CallMeta,
    ) -> Result<ToolOutput, ToolError> {
        let expr = arg_str(args, "expression").unwrap_or_default();
        Ok(match calculate(expr) {
            Ok(answer) => ToolOutput {
                own: false,
                ok: true,
                content: answer,
            },
            Err(why) => ToolOutput {
                own: false,
                ok: false,
                content: format!("cannot compute {expr:?}: {why}"),
            },
        })
    }
}

/// The answer to `input`, as a line ("17*23 = 391", "5 mi = 8.0467 km").
pub(crate) fn calculate(input: &str) -> Result<String, String> {
    let text = input.trim().trim_end_matches(['?', '.', '!', '=']).trim();
    if text.is_empty() {
        return Err("the expression is empty".into());
    }
    if let Some(answer) = convert(text)? {
        return Ok(answer);
    }
    let normal = words_to_symbols(text);
    let value = Parser::new(&normal).parse()?;
    if !value.is_finite() {
        return Err("the result is not a finite number (a division by zero?)".into());
    }
    Ok(format!("{} = {}", normal.trim(), format_number(value)))
}

/// A number as people write it: an integer when it is one, else up to six
/// significant decimals.
fn format_number(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let digits = (6 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Words and symbols people use, as the parser's operators.
fn words_to_symbols(text: &str) -> String {
    let mut s = format!(" {} ", text.to_lowercase());
    // Thousands separators ("1,000") go; a decimal comma ("3,5") is a point.
    let thousands = regex_lite(r"(\d),(\d{3})\b");
    while thousands.is_match(&s) {
        s = thousands.replace_all(&s, "$1$2").into_owned();
    }
    s = regex_lite(r"(\d),(\d)")
        .replace_all(&s, "$1.$2")
        .into_owned();
    for (from, to) in [
        ("what is", " "),
        ("what's", " "),
        ("whats", " "),
        ("how much is", " "),
        ("combien font", " "),
        ("combien fait", " "),
        ("calculate", " "),
        ("calcule", " "),
        ("the square root of", " sqrt "),
        ("square root of", " sqrt "),
        ("la racine carrée de", " sqrt "),
        ("racine carrée de", " sqrt "),
        ("racine de", " sqrt "),
        ("to the power of", "^"),
        ("à la puissance", "^"),
        ("puissance", "^"),
        ("multiplied by", "*"),
        ("multiplié par", "*"),
        ("divided by", "/"),
        ("divisé par", "/"),
        ("squared", "^2"),
        ("au carré", "^2"),
        ("cubed", "^3"),
        ("percent", "%"),
        ("pour cent", "%"),
        ("pourcent", "%"),
        ("×", "*"),
        ("·", "*"),
        ("÷", "/"),
        ("−", "-"),
    ] {
        s = s.replace(from, to);
    }
    for (word, op) in [
        ("times", "*"),
        ("fois", "*"),
        ("plus", "+"),
        ("minus", "-"),
        ("moins", "-"),
        ("over", "/"),
        ("sur", "/"),
        ("of", "*"),
        ("de", "*"),
        ("x", "*"),
        ("the", " "),
        ("le", " "),
    ] {
        s = regex_lite(&format!(r"\b{word}\b"))
            .replace_all(&s, op)
            .into_owned();
    }
    s
}

fn regex_lite(pattern: &str) -> regex::Regex {
    regex::Regex::new(pattern).expect("fixed patterns are valid")
}

/// Recursive descent over `+ - * / ^ %`, parentheses and `sqrt`.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            i: 0,
        }
    }

    fn parse(mut self) -> Result<f64, String> {
        let v = self.expr(0)?;
        self.ws();
        if self.i < self.s.len() {
            let rest = String::from_utf8_lossy(&self.s[self.i..]);
            return Err(format!("cannot read {:?}", rest.trim()));
        }
        Ok(v)
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn expr(&mut self, depth: u32) -> Result<f64, String> {
        if depth > 64 {
            return Err("too deeply nested".into());
        }
        let mut v = self.term(depth)?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let r = self.term(depth)?;
            v = if c == b'+' { v + r } else { v - r };
        }
        Ok(v)
    }

    fn term(&mut self, depth: u32) -> Result<f64, String> {
        let mut v = self.power(depth)?;
        loop {
            match self.peek() {
                Some(b'*') => {
                    self.i += 1;
                    v *= self.power(depth)?;
                }
                Some(b'/') => {
                    self.i += 1;
                    let d = self.power(depth)?;
                    if d == 0.0 {
                        return Err("division by zero".into());
                    }
                    v /= d;
                }
                // "15% * 80" (from "15% of 80") or "15%" alone.
                Some(b'%') => {
                    self.i += 1;
                    v /= 100.0;
                }
                _ => return Ok(v),
            }
        }
    }

    fn power(&mut self, depth: u32) -> Result<f64, String> {
        let base = self.unary(depth)?;
        if self.peek() == Some(b'^') {
            self.i += 1;
            let exp = self.power(depth + 1)?;
            return Ok(base.powf(exp));
        }
        Ok(base)
    }

    fn unary(&mut self, depth: u32) -> Result<f64, String> {
        if depth > 64 {
            return Err("too deeply nested".into());
        }
        match self.peek() {
            Some(b'-') => {
                self.i += 1;
                Ok(-self.unary(depth + 1)?)
            }
            Some(b'+') => {
                self.i += 1;
                self.unary(depth + 1)
            }
            _ => self.primary(depth),
        }
    }

    fn primary(&mut self, depth: u32) -> Result<f64, String> {
        match self.peek() {
            Some(b'(') => {
                self.i += 1;
                let v = self.expr(depth + 1)?;
                if self.peek() != Some(b')') {
                    return Err("a parenthesis is not closed".into());
                }
                self.i += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.i;
                while self.i < self.s.len()
                    && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'.')
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                n.parse::<f64>()
                    .map_err(|_| format!("{n:?} is not a number"))
            }
            Some(c) if c.is_ascii_alphabetic() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_alphabetic() {
                    self.i += 1;
                }
                let word = std::str::from_utf8(&self.s[start..self.i]).unwrap_or_default();
                match word {
                    "sqrt" => {
                        let v = self.power(depth + 1)?;
                        if v < 0.0 {
                            return Err("the square root of a negative number".into());
                        }
                        Ok(v.sqrt())
                    }
                    "pi" => Ok(std::f64::consts::PI),
                    _ => Err(format!("unknown word {word:?}")),
                }
            }
            Some(c) => Err(format!("unexpected {:?}", c as char)),
            None => Err("the expression ends too soon".into()),
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Dimension {
    Length,
    Mass,
    Volume,
    Speed,
    Temperature,
}

/// Units: names (lowercase, English and French), dimension, and size in
/// the dimension's base unit (m, kg, l, m/s; temperatures are special).
const UNITS: &[(&[&str], Dimension, f64, &str)] = &[
    (
        &[
            "km",
            "kilometer",
            "kilometers",
            "kilometre",
            "kilometres",
            "kilomètre",
            "kilomètres",
        ],
        Dimension::Length,
        1000.0,
        "km",
    ),
    (
        &["m", "meter", "meters", "metre", "metres", "mètre", "mètres"],
        Dimension::Length,
        1.0,
        "m",
    ),
    (
        &[
            "cm",
            "centimeter",
            "centimeters",
            "centimetre",
            "centimetres",
            "centimètre",
            "centimètres",
        ],
        Dimension::Length,
        0.01,
        "cm",
    ),
    (
        &[
            "mm",
            "millimeter",
            "millimeters",
            "millimetre",
            "millimetres",
            "millimètre",
            "millimètres",
        ],
        Dimension::Length,
        0.001,
        "mm",
    ),
    (&["mi", "mile", "miles"], Dimension::Length, 1609.344, "mi"),
    (&["yd", "yard", "yards"], Dimension::Length, 0.9144, "yd"),
    (
        &["ft", "foot", "feet", "pied", "pieds"],
        Dimension::Length,
        0.3048,
        "ft",
    ),
    (
        &["in", "inch", "inches", "pouce", "pouces"],
        Dimension::Length,
        0.0254,
        "in",
    ),
    (
        &[
            "kg",
            "kgs",
            "kilo",
            "kilos",
            "kilogram",
            "kilograms",
            "kilogramme",
            "kilogrammes",
        ],
        Dimension::Mass,
        1.0,
        "kg",
    ),
    (
        &["g", "gram", "grams", "gramme", "grammes"],
        Dimension::Mass,
        0.001,
        "g",
    ),
    (
        &["lb", "lbs", "pound", "pounds", "livre", "livres"],
        Dimension::Mass,
        0.45359237,
        "lb",
    ),
    (
        &["oz", "ounce", "ounces", "once", "onces"],
        Dimension::Mass,
        0.028349523125,
        "oz",
    ),
    (
        &["t", "tonne", "tonnes", "ton", "tons"],
        Dimension::Mass,
        1000.0,
        "t",
    ),
    (
        &["l", "liter", "liters", "litre", "litres"],
        Dimension::Volume,
        1.0,
        "l",
    ),
    (
        &[
            "ml",
            "milliliter",
            "milliliters",
            "millilitre",
            "millilitres",
        ],
        Dimension::Volume,
        0.001,
        "ml",
    ),
    (
        &[
            "cl",
            "centiliter",
            "centiliters",
            "centilitre",
            "centilitres",
        ],
        Dimension::Volume,
        0.01,
        "cl",
    ),
    (
        &["gal", "gallon", "gallons"],
        Dimension::Volume,
        3.785411784,
        "gal",
    ),
    (
        &["cup", "cups", "tasse", "tasses"],
        Dimension::Volume,
        0.2365882365,
        "cup",
    ),
    (
        &["km/h", "kmh", "kph"],
        Dimension::Speed,
        1000.0 / 3600.0,
        "km/h",
    ),
    (&["mph"], Dimension::Speed, 0.44704, "mph"),
    (&["m/s"], Dimension::Speed, 1.0, "m/s"),
    (
        &[
            "c",
            "°c",
            "celsius",
            "degrees celsius",
            "degré celsius",
            "degrés celsius",
            "degree celsius",
        ],
        Dimension::Temperature,
        0.0,
        "°C",
    ),
    (
        &[
            "f",
            "°f",
            "fahrenheit",
            "degrees fahrenheit",
            "degrés fahrenheit",
            "degree fahrenheit",
        ],
        Dimension::Temperature,
        1.0,
        "°F",
    ),
    (
        &["k", "kelvin", "kelvins"],
        Dimension::Temperature,
        2.0,
        "K",
    ),
];

fn unit(name: &str) -> Option<(Dimension, f64, &'static str)> {
    let name = name.trim().trim_end_matches(['.', '?']).trim();
    let name = name
        .strip_prefix("degrees ")
        .or_else(|| name.strip_prefix("degrés "))
        .filter(|n| unit(n).is_some())
        .unwrap_or(name);
    UNITS
        .iter()
        .find(|(names, ..)| names.contains(&name))
        .map(|(_, d, f, sym)| (*d, *f, *sym))
}

fn to_celsius(v: f64, scale: f64) -> f64 {
    match scale as i32 {
        1 => (v - 32.0) * 5.0 / 9.0,
        2 => v - 273.15,
        _ => v,
    }
}

fn from_celsius(c: f64, scale: f64) -> f64 {
    match scale as i32 {
        1 => c * 9.0 / 5.0 + 32.0,
        2 => c + 273.15,
        _ => c,
    }
}

/// "5 miles in km": `Some(answer)`; not a conversion: `None`.
fn convert(text: &str) -> Result<Option<String>, String> {
    let lower = text.to_lowercase().replace(',', ".");
    let re = regex_lite(
        r"^(?:what is\s+|what's\s+|whats\s+|how much is\s+|combien (?:font|fait)\s+|convert\s+|convertis\s+)?(-?\d+(?:\.\d+)?)\s*(.+?)\s+(?:in|to|into|en|in to)\s+(.+)$",
    );
    let Some(c) = re.captures(&lower) else {
        return Ok(None);
    };
    let value: f64 = c[1]
        .parse()
        .map_err(|_| format!("{:?} is not a number", &c[1]))?;
    let (Some(from), Some(to)) = (unit(&c[2]), unit(&c[3])) else {
        return Ok(None);
    };
    if from.0 != to.0 {
        return Err(format!("cannot convert {} to {}", from.2, to.2));
    }
    let result = if from.0 == Dimension::Temperature {
        from_celsius(to_celsius(value, from.1), to.1)
    } else {
        value * from.1 / to.1
    };
    Ok(Some(format!(
        "{} {} = {} {}",
        format_number(value),
        from.2,
        format_number((result * 10_000.0).round() / 10_000.0),
        to.2
    )))
}

#[cfg(test)]
mod tests {
    use super::calculate;

    fn answer(s: &str) -> String {
        let a = calculate(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        a.rsplit("= ").next().unwrap().to_string()
    }

    #[test]
    fn arithmetic_in_symbols_and_words() {
        assert_eq!(answer("17*23"), "391");
        assert_eq!(answer("17 times 23"), "391");
        assert_eq!(answer("What is 17 x 23?"), "391");
        assert_eq!(answer("12 fois 8"), "96");
        assert_eq!(answer("15% of 80"), "12");
        assert_eq!(answer("20 % de 350"), "70");
        assert_eq!(answer("(3+4)/2"), "3.5");
        assert_eq!(answer("2^10"), "1024");
        assert_eq!(answer("2 to the power of 10"), "1024");
        assert_eq!(answer("the square root of 144"), "12");
        assert_eq!(answer("sqrt(2)"), "1.414214");
        assert_eq!(answer("1,000 / 8"), "125");
        assert_eq!(answer("3,5 + 1"), "4.5");
        assert_eq!(answer("-3 - -2"), "-1");
        assert_eq!(answer("156 divided by 4"), "39");
        assert_eq!(answer("1/3"), "0.3333333");
    }

    #[test]
    fn conversions() {
        assert_eq!(answer("5 miles in km"), "8.0467 km");
        assert_eq!(answer("100 F in C"), "37.7778 °C");
        assert_eq!(answer("30 °C to °F"), "86 °F");
        assert_eq!(answer("70 kg in pounds"), "154.3236 lb");
        assert_eq!(answer("10 km en miles"), "6.2137 mi");
        assert_eq!(answer("Convert 2 cups to ml"), "473.1765 ml");
        assert!(
            calculate("5 kg in km")
                .unwrap_err()
                .contains("cannot convert")
        );
    }

    #[test]
    fn bad_input_is_said_plainly() {
        assert!(calculate("").is_err());
        assert!(calculate("1/0").unwrap_err().contains("division by zero"));
        assert!(calculate("rm -rf /").is_err());
        assert!(calculate("(((1)").unwrap_err().contains("parenthesis"));
        assert!(calculate(&"(".repeat(500)).is_err());
    }
}
