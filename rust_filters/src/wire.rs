//! The stream's hot-path wire formats: a tick or an option chain read from JSON and a range
//! message written as JSON, one call each (in Python, `orjson` plus the field checks cost ~3 µs a tick and
//! building plus dumping a range ~4.5 µs; this is the per-event work that bounds the
//! embedded pipeline's throughput).
//!
//! Parsing is a *fast path*: [`parse_tick`] and [`parse_chain`] return `None` for anything it is not sure of
//! (escapes in the symbol, an ISO timestamp, a bad field, a byte that is not UTF-8...), and the Python parser then
//! decides with its step-by-step checks and says why. So the two can never disagree on
//! what is accepted, only on who does the work. `serde_json` reads the numbers with
//! `float_roundtrip` (correctly rounded, as `orjson`).

use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A well-formed tick: `(symbol, ts, price, size, bid, ask)`.
pub type TickFields = (String, i64, f64, Option<f64>, Option<f64>, Option<f64>);

#[derive(Deserialize)]
struct RawTick<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    ts: i64,
    price: f64,
    #[serde(default)]
    size: Option<f64>,
    #[serde(default)]
    bid: Option<f64>,
    #[serde(default)]
    ask: Option<f64>,
}

/// The tick in `raw` if it is a well-formed tick message, else `None` (see the module docs).
///
/// The rules are those of `stream/messages.py`: a non-empty symbol (here: printable ASCII
/// without spaces, anything else goes to the Python checks), `ts` a positive integer,
/// `price > 0`, `size >= 0`, `bid > 0`, `ask > 0` and `bid <= ask`, all finite; unknown
/// fields ignored; `null` is the same as absent for the optional fields.
pub fn parse_tick(raw: &[u8]) -> Option<TickFields> {
    if !is_object(raw) {
        return None;
    }
    let t: RawTick = serde_json::from_str(utf8(raw)?).ok()?;
    let ok = symbol_ok(t.symbol)
        && t.ts > 0
        && t.price > 0.0
        && t.price.is_finite()
        && at_least(t.size, 0.0)
        && t.bid.is_none_or(|b| b > 0.0 && b.is_finite())
        && t.ask.is_none_or(|a| a > 0.0 && a.is_finite())
        && not_crossed(t.bid, t.ask);
    ok.then(|| (t.symbol.to_owned(), t.ts, t.price, t.size, t.bid, t.ask))
}

/// A well-formed option quote: `(expiry, strike, right, iv, delta, gamma, vega, bid, ask,
/// volume, open_interest)`; `expiry` is `YYYY-MM-DD...` (Python checks it is a real date).
pub type QuoteFields = (
    String,
    f64,
    String,
    f64,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

/// A well-formed option-chain snapshot: `(symbol, ts, underlying_price, quotes)`.
pub type ChainFields = (String, i64, f64, Vec<QuoteFields>);

#[derive(Deserialize)]
struct RawChain<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    ts: i64,
    underlying_price: f64,
    #[serde(borrow)]
    quotes: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawQuote<'a> {
    #[serde(borrow)]
    expiry: &'a str,
    strike: f64,
    #[serde(borrow)]
    right: &'a str,
    iv: f64,
    delta: f64,
    #[serde(default)]
    gamma: Option<f64>,
    #[serde(default)]
    vega: Option<f64>,
    #[serde(default)]
    bid: Option<f64>,
    #[serde(default)]
    ask: Option<f64>,
    #[serde(default)]
    volume: Option<f64>,
    #[serde(default)]
    open_interest: Option<f64>,
}

fn is_object(raw: &[u8]) -> bool {
    // serde reads a JSON array into a struct by position: only objects qualify.
    raw.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// `raw` as text if every byte of it is valid UTF-8: `serde_json` does not check the
/// strings it skips (an ignored field), `orjson` calls any invalid byte malformed JSON.
fn utf8(raw: &[u8]) -> Option<&str> {
    std::str::from_utf8(raw).ok()
}

fn symbol_ok(symbol: &str) -> bool {
    !symbol.is_empty() && symbol.bytes().all(|b| b.is_ascii_graphic())
}

fn at_least(value: Option<f64>, minimum: f64) -> bool {
    value.is_none_or(|v| v >= minimum && v.is_finite())
}

fn not_crossed(bid: Option<f64>, ask: Option<f64>) -> bool {
    match (bid, ask) {
        (Some(b), Some(a)) => b <= a,
        _ => true,
    }
}

fn iso_date_prefix(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 10
        && b[..10].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

fn quote(raw: &RawValue) -> Option<QuoteFields> {
    if !is_object(raw.get().as_bytes()) {
        return None;
    }
    let q: RawQuote = serde_json::from_str(raw.get()).ok()?;
    let ok = iso_date_prefix(q.expiry)
        && (q.right == "C" || q.right == "P")
        && q.strike > 0.0
        && q.strike.is_finite()
        && q.iv > 0.0
        && q.iv.is_finite()
        && (-1.0..=1.0).contains(&q.delta)
        && at_least(q.gamma, f64::NEG_INFINITY)
        && at_least(q.vega, f64::NEG_INFINITY)
        && at_least(q.bid, 0.0)
        && at_least(q.ask, 0.0)
        && not_crossed(q.bid, q.ask)
        && at_least(q.volume, 0.0)
        && at_least(q.open_interest, 0.0);
    ok.then(|| {
        (
            q.expiry.to_owned(),
            q.strike,
            q.right.to_owned(),
            q.iv,
            q.delta,
            q.gamma,
            q.vega,
            q.bid,
            q.ask,
            q.volume,
            q.open_interest,
        )
    })
}

/// The chain in `raw` if it is a well-formed option-chain message, else `None`: the rules
/// of `stream/messages.py` (a symbol, a positive integer `ts`, `underlying_price > 0`, a
/// non-empty list of quotes each with an ISO expiry, right `C`/`P`, `strike > 0`,
/// `iv > 0`, `delta` in [-1, 1], finite optional greeks, non-negative bid/ask/volume/open
/// interest and bid <= ask).
pub fn parse_chain(raw: &[u8]) -> Option<ChainFields> {
    if !is_object(raw) {
        return None;
    }
    let c: RawChain = serde_json::from_str(utf8(raw)?).ok()?;
    if !(symbol_ok(c.symbol)
        && c.ts > 0
        && c.underlying_price > 0.0
        && c.underlying_price.is_finite()
        && !c.quotes.is_empty())
    {
        return None;
    }
    let quotes = c
        .quotes
        .iter()
        .map(|q| quote(q))
        .collect::<Option<Vec<_>>>()?;
    Some((c.symbol.to_owned(), c.ts, c.underlying_price, quotes))
}

/// One ensemble member's part of a range: `(name, low, high, weight, status)`.
pub type MemberPart = (String, Option<f64>, Option<f64>, f64, String);

/// A range forecast made at a bar close, re-anchored at each tick's price when encoded:
/// the Rust twin of `stream.ranges.RangeTemplate.encode` (schema v1, keys in schema order).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeEncoder {
    pub symbol: String,
    pub horizon: u32,
    pub confidence: f64,
    pub anchor: f64,
    pub low: f64,
    pub high: f64,
    pub path_low: Option<f64>,
    pub path_high: Option<f64>,
    pub center: f64,
    pub models: Vec<MemberPart>,
    pub regime: String,
}

#[derive(Serialize)]
struct Message<'a> {
    v: u32,
    symbol: &'a str,
    ts: i64,
    seq: u64,
    horizon: u32,
    confidence: f64,
    low: f64,
    high: f64,
    path_low: Option<f64>,
    path_high: Option<f64>,
    center: f64,
    models: Members<'a>,
    regime: &'a str,
    vix: Option<f64>,
    tick_vol: Option<TickVol>,
}

#[derive(Serialize)]
struct TickVol {
    ukf: f64,
    pf: f64,
}

#[derive(Serialize)]
struct Part<'a> {
    low: Option<f64>,
    high: Option<f64>,
    weight: f64,
    status: &'a str,
}

/// The members as a JSON object in the ensemble's order, each price re-anchored by `k`.
struct Members<'a> {
    parts: &'a [MemberPart],
    k: f64,
}

impl Serialize for Members<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.parts.len()))?;
        for (name, low, high, weight, status) in self.parts {
            let part = Part {
                low: low.map(|v| v * self.k),
                high: high.map(|v| v * self.k),
                weight: *weight,
                status,
            };
            map.serialize_entry(name, &part)?;
        }
        map.end()
    }
}

pub const SCHEMA_VERSION: u32 = 1;

/// The statuses and regimes schema v1 allows (`stream/ranges.py` `STATUSES`, `REGIMES`).
pub const STATUSES: [&str; 3] = ["ok", "degraded", "failed"];
pub const REGIMES: [&str; 3] = ["low", "normal", "high"];

fn positive(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(format!("{name} must be finite and > 0, got {value}"))
    }
}

impl RangeEncoder {
    /// `Ok` if every message this encoder writes follows schema v1 (the rules of
    /// `stream.ranges.validate_range`), else the first rule broken, naming the field.
    /// Checked once at construction so that `encode` only checks the tick's own values.
    pub fn validate(&self) -> Result<(), String> {
        if self.symbol.is_empty() {
            return Err("symbol must be a non-empty string".into());
        }
        if self.horizon < 1 {
            return Err(format!("horizon must be >= 1, got {}", self.horizon));
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(format!(
                "confidence must be in (0, 1), got {}",
                self.confidence
            ));
        }
        positive("anchor", self.anchor)?;
        positive("low", self.low)?;
        positive("high", self.high)?;
        positive("center", self.center)?;
        if !(self.low <= self.center && self.center <= self.high) {
            return Err(format!(
                "need low <= center <= high, got low={}, center={}, high={}",
                self.low, self.center, self.high
            ));
        }
        match (self.path_low, self.path_high) {
            (None, None) => {}
            (Some(pl), Some(ph)) => {
                positive("path_low", pl)?;
                positive("path_high", ph)?;
                if !(pl <= self.low && self.high <= ph) {
                    return Err(format!(
                        "need path_low <= low and high <= path_high, got path_low={pl}, \
                         low={}, high={}, path_high={ph}",
                        self.low, self.high
                    ));
                }
            }
            _ => return Err("path_low and path_high must both be numbers or both None".into()),
        }
        if self.models.is_empty() {
            return Err("models must not be empty".into());
        }
        for (name, low, high, weight, status) in &self.models {
            for (end, value) in [("low", low), ("high", high)] {
                if let Some(v) = value {
                    positive(&format!("models[{name:?}].{end}"), *v)?;
                }
            }
            if !(weight.is_finite() && *weight >= 0.0) {
                return Err(format!(
                    "models[{name:?}].weight must be finite and >= 0, got {weight}"
                ));
            }
            if !STATUSES.contains(&status.as_str()) {
                return Err(format!(
                    "models[{name:?}].status must be one of {STATUSES:?}, got {status:?}"
                ));
            }
        }
        if !REGIMES.contains(&self.regime.as_str()) {
            return Err(format!(
                "regime must be one of {REGIMES:?}, got {:?}",
                self.regime
            ));
        }
        Ok(())
    }

    /// The message for a tick at `price` (every price scaled by `price / anchor`), for an
    /// encoder that passed [`RangeEncoder::validate`]; an `Err` names the tick value that
    /// would make the message break schema v1 (nothing is written then).
    pub fn encode(
        &self,
        ts: i64,
        seq: u64,
        price: f64,
        vix: Option<f64>,
        tick_vol: Option<(f64, f64)>,
    ) -> Result<Vec<u8>, String> {
        if ts < 1 {
            return Err(format!("ts must be >= 1, got {ts}"));
        }
        if seq < 1 {
            return Err(format!("seq must be >= 1, got {seq}"));
        }
        positive("price", price)?;
        if let Some(v) = vix {
            positive("vix", v)?;
        }
        if let Some((ukf, pf)) = tick_vol {
            positive("tick_vol ukf", ukf)?;
            positive("tick_vol pf", pf)?;
        }
        let k = price / self.anchor;
        // The highest and lowest prices in the message; all the others lie between them.
        let members = self
            .models
            .iter()
            .flat_map(|part| [part.1, part.2])
            .flatten();
        let top = members
            .clone()
            .fold(self.path_high.unwrap_or(self.high), f64::max);
        let bottom = members.fold(self.path_low.unwrap_or(self.low), f64::min);
        if !((top * k).is_finite() && bottom * k > 0.0) {
            return Err(format!(
                "price {price} re-anchors the range (anchor {}) out of floating-point range",
                self.anchor
            ));
        }
        let message = Message {
            v: SCHEMA_VERSION,
            symbol: &self.symbol,
            ts,
            seq,
            horizon: self.horizon,
            confidence: self.confidence,
            low: self.low * k,
            high: self.high * k,
            path_low: self.path_low.map(|v| v * k),
            path_high: self.path_high.map(|v| v * k),
            center: self.center * k,
            models: Members {
                parts: &self.models,
                k,
            },
            regime: &self.regime,
            vix,
            tick_vol: tick_vol.map(|(ukf, pf)| TickVol { ukf, pf }),
        };
        // Serialising plain numbers, strings and options into a Vec cannot fail.
        Ok(serde_json::to_vec(&message).expect("a range message always serialises"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ticks_parse() {
        let t =
            parse_tick(br#"{"symbol":"SPX","ts":5,"price":2683.73,"size":3,"bid":1.5,"ask":2}"#);
        assert_eq!(
            t,
            Some(("SPX".into(), 5, 2683.73, Some(3.0), Some(1.5), Some(2.0)))
        );
        let t = parse_tick(br#" {"price":1,"ts":7,"symbol":"A","bid":null,"extra":[1,{"x":2}]}"#);
        assert_eq!(t, Some(("A".into(), 7, 1.0, None, None, None)));
    }

    #[test]
    fn anything_doubtful_is_left_to_the_careful_parser() {
        for raw in [
            &br#"["SPX",5,1.0]"#[..],
            br#"{"symbol":"SPX","ts":"2018-01-02T14:30:00Z","price":1}"#,
            br#"{"symbol":"S\u0050X","ts":5,"price":1}"#,
            br#"{"symbol":"","ts":5,"price":1}"#,
            br#"{"symbol":"A B","ts":5,"price":1}"#,
            br#"{"symbol":"SPX","ts":0,"price":1}"#,
            br#"{"symbol":"SPX","ts":5,"price":0}"#,
            br#"{"symbol":"SPX","ts":5,"price":-1}"#,
            br#"{"symbol":"SPX","ts":5,"price":1e999}"#,
            br#"{"symbol":"SPX","ts":5,"price":true}"#,
            br#"{"symbol":"SPX","ts":5,"price":null}"#,
            br#"{"symbol":"SPX","ts":5}"#,
            br#"{"symbol":"SPX","ts":5,"price":1,"size":-1}"#,
            br#"{"symbol":"SPX","ts":5,"price":1,"bid":0}"#,
            br#"{"symbol":"SPX","ts":5,"price":1,"bid":2,"ask":1}"#,
            br#"{"symbol":"SPX","ts":5,"price":1,"price":2}"#,
            br#"{"symbol":"SPX","ts":5,"price":1"#,
        ] {
            assert_eq!(parse_tick(raw), None, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn invalid_utf8_anywhere_is_left_to_the_careful_parser() {
        // `?` stands for the invalid byte: 0xff never occurs in UTF-8, 0xc3 is a lead byte
        // with no continuation.
        let tick = r#"{"symbol":"SPX","ts":5,"price":1,"note":"?"}"#;
        let chain =
            format!(r#"{{"symbol":"SPX","ts":9,"underlying_price":1,"x":"?","quotes":[{QUOTE}]}}"#);
        let spoil = |text: &str, byte: u8| {
            let mut bytes = text.as_bytes().to_vec();
            bytes[text.find('?').unwrap()] = byte;
            bytes
        };
        assert!(parse_tick(tick.as_bytes()).is_some());
        assert!(parse_chain(chain.as_bytes()).is_some());
        for byte in [0xff, 0xc3] {
            assert_eq!(parse_tick(&spoil(tick, byte)), None);
            assert_eq!(parse_chain(&spoil(&chain, byte)), None);
        }
    }

    #[test]
    fn numbers_are_read_correctly_rounded() {
        let t = parse_tick(br#"{"symbol":"X","ts":1,"price":2651.3759740740743}"#).unwrap();
        assert_eq!(t.2, 2_651.375_974_074_074_3);
    }

    const QUOTE: &str = r#"{"expiry":"2018-02-16","strike":2650,"right":"P","iv":0.12,"delta":-0.3,"gamma":0.001,"bid":1.5,"ask":1.7,"volume":null}"#;

    #[test]
    fn well_formed_chains_parse() {
        let raw = format!(
            r#"{{"symbol":"SPX","ts":9,"underlying_price":2700.5,"quotes":[{QUOTE},{QUOTE}],"x":1}}"#
        );
        let (symbol, ts, spot, quotes) = parse_chain(raw.as_bytes()).unwrap();
        assert_eq!(
            (symbol.as_str(), ts, spot, quotes.len()),
            ("SPX", 9, 2700.5, 2)
        );
        assert_eq!(
            quotes[0],
            (
                "2018-02-16".into(),
                2650.0,
                "P".into(),
                0.12,
                -0.3,
                Some(0.001),
                None,
                Some(1.5),
                Some(1.7),
                None,
                None
            )
        );
    }

    #[test]
    fn doubtful_chains_are_left_to_the_careful_parser() {
        let bad_quotes = [
            r#"["2018-02-16",2650,"P",0.12,-0.3]"#,
            r#"{"expiry":"16/02/2018","strike":2650,"right":"P","iv":0.12,"delta":-0.3}"#,
            r#"{"expiry":"2018-02-16","strike":2650,"right":"X","iv":0.12,"delta":-0.3}"#,
            r#"{"expiry":"2018-02-16","strike":0,"right":"P","iv":0.12,"delta":-0.3}"#,
            r#"{"expiry":"2018-02-16","strike":2650,"right":"P","iv":0.12,"delta":-1.3}"#,
            r#"{"expiry":"2018-02-16","strike":2650,"right":"P","iv":0.12,"delta":-0.3,"bid":2,"ask":1}"#,
            r#"{"expiry":"2018-02-16","strike":2650,"right":"P","iv":0.12,"delta":-0.3,"volume":-1}"#,
            r#"{"expiry":"2018-02-16","strike":2650,"right":"P","iv":0.12}"#,
        ];
        for q in bad_quotes {
            let raw = format!(
                r#"{{"symbol":"SPX","ts":9,"underlying_price":2700.5,"quotes":[{QUOTE},{q}]}}"#
            );
            assert_eq!(parse_chain(raw.as_bytes()), None, "{q}");
        }
        for raw in [
            r#"{"symbol":"SPX","ts":9,"underlying_price":2700.5,"quotes":[]}"#.to_string(),
            format!(r#"{{"symbol":"SPX","ts":9,"underlying_price":0,"quotes":[{QUOTE}]}}"#),
            format!(r#"{{"symbol":"SPX","ts":"9","underlying_price":1,"quotes":[{QUOTE}]}}"#),
            format!(r#"["SPX",9,1,[{QUOTE}]]"#),
        ] {
            assert_eq!(parse_chain(raw.as_bytes()), None, "{raw}");
        }
    }

    fn encoder() -> RangeEncoder {
        RangeEncoder {
            symbol: "SPX".into(),
            horizon: 5,
            confidence: 0.9,
            anchor: 100.0,
            low: 95.0,
            high: 105.0,
            path_low: Some(94.0),
            path_high: Some(106.0),
            center: 100.0,
            models: vec![
                ("b".into(), Some(96.0), Some(104.0), 0.25, "ok".into()),
                ("a".into(), None, None, 0.0, "failed".into()),
            ],
            regime: "normal".into(),
        }
    }

    #[test]
    fn ranges_are_written_in_schema_order_and_re_anchored() {
        let out = encoder()
            .encode(7, 3, 110.0, Some(12.5), Some((10.0, 11.0)))
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"v":1,"symbol":"SPX","ts":7,"seq":3,"horizon":5,"confidence":0.9,"#,
                r#""low":104.50000000000001,"high":115.50000000000001,"path_low":103.4,"#,
                r#""path_high":116.60000000000001,"center":110.00000000000001,"models":{"b":{"low":105.60000000000001,"#,
                r#""high":114.4,"weight":0.25,"status":"ok"},"a":{"low":null,"high":null,"#,
                r#""weight":0.0,"status":"failed"}},"regime":"normal","vix":12.5,"#,
                r#""tick_vol":{"ukf":10.0,"pf":11.0}}"#
            )
        );
        let none = String::from_utf8(encoder().encode(7, 3, 100.0, None, None).unwrap()).unwrap();
        assert!(none.ends_with(r#""vix":null,"tick_vol":null}"#));
    }

    #[test]
    fn an_encoder_that_would_break_the_schema_is_refused_naming_the_field() {
        type Spoil = fn(&mut RangeEncoder);
        let cases: Vec<(Spoil, &str)> = vec![
            (|e| e.symbol.clear(), "symbol"),
            (|e| e.horizon = 0, "horizon"),
            (|e| e.confidence = 1.0, "confidence"),
            (|e| e.anchor = f64::NAN, "anchor"),
            (|e| e.low = f64::NAN, "low must be finite"),
            (|e| e.high = f64::INFINITY, "high must be finite"),
            (|e| e.center = 0.0, "center must be finite"),
            (|e| e.center = 104.9 + 1.0, "need low <= center <= high"),
            (|e| e.path_high = None, "must both be numbers or both None"),
            (|e| e.path_low = Some(96.0), "need path_low <= low"),
            (
                |e| e.path_high = Some(f64::INFINITY),
                "path_high must be finite",
            ),
            (|e| e.models.clear(), "models must not be empty"),
            (|e| e.models[0].1 = Some(-1.0), r#"models["b"].low"#),
            (|e| e.models[0].3 = f64::NAN, r#"models["b"].weight"#),
            (|e| e.models[1].4 = "broken".into(), r#"models["a"].status"#),
            (|e| e.regime = "calm".into(), "regime must be one of"),
        ];
        assert!(encoder().validate().is_ok());
        for (spoil, expected) in cases {
            let mut e = encoder();
            spoil(&mut e);
            let err = e.validate().unwrap_err();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }

    #[test]
    fn a_tick_that_would_break_the_schema_writes_nothing() {
        let e = encoder();
        for (ts, seq, price, vix, tick_vol, expected) in [
            (0, 3, 100.0, None, None, "ts must be >= 1"),
            (7, 0, 100.0, None, None, "seq must be >= 1"),
            (7, 3, f64::NAN, None, None, "price"),
            (7, 3, 100.0, Some(f64::INFINITY), None, "vix"),
            (7, 3, 100.0, Some(0.0), None, "vix"),
            (7, 3, 100.0, None, Some((f64::NAN, 1.0)), "tick_vol ukf"),
            (7, 3, 100.0, None, Some((1.0, -1.0)), "tick_vol pf"),
            (7, 3, 1.7e308, None, None, "out of floating-point range"),
            (7, 3, 5e-324, None, None, "out of floating-point range"),
        ] {
            let err = e.encode(ts, seq, price, vix, tick_vol).unwrap_err();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
