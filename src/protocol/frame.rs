//! Frames: `{event, data, ack}` in, and the same shape out, encoded once
//! into shareable bytes.

use super::error::{ErrorCode, ProtocolError};
use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use serde_json::{Map, Value};

/// Largest `ack` a client may choose (2^53 - 1, exact in JavaScript).
pub const MAX_ACK: u64 = (1 << 53) - 1;

/// A parsed client frame: the event name, its data object and ack.
#[derive(Debug)]
pub struct IncomingFrame {
    pub event: String,
    pub data: Map<String, Value>,
    pub ack: Option<u64>,
}

/// Why a frame could not be parsed; `event` is set when the name was read.
#[derive(Debug)]
pub struct FrameError {
    pub event: Option<String>,
    pub ack: Option<u64>,
    pub error: ProtocolError,
}

impl IncomingFrame {
    /// Parses one text message with the default shape limits.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        Self::parse_limited(text, ShapeLimits::default())
    }

    /// Parses one text message; a frame nested deeper or holding more
    /// values than `limits` allow is `bad_request`.
    pub fn parse_limited(text: &str, limits: ShapeLimits) -> Result<Self, FrameError> {
        let frame = Self::parse_unchecked(text)?;
        let mut values = 0;
        if !frame
            .data
            .values()
            .all(|v| within(v, 2, &limits, &mut values))
        {
            return Err(FrameError {
                event: Some(frame.event),
                ack: frame.ack,
                error: ProtocolError::bad_request(
                    "`data` is nested too deep or holds too many values",
                ),
            });
        }
        Ok(frame)
    }

    fn parse_unchecked(text: &str) -> Result<Self, FrameError> {
        let fail = |event: Option<String>, ack, msg: &str| FrameError {
            event,
            ack,
            error: ProtocolError::bad_request(msg),
        };
        let value: Value =
            serde_json::from_str(text).map_err(|_| fail(None, None, "frame is not valid JSON"))?;
        let Value::Object(mut obj) = value else {
            return Err(fail(None, None, "frame is not a JSON object"));
        };
        let event = match obj.remove("event") {
            Some(Value::String(s)) => s,
            Some(_) => return Err(fail(None, None, "`event` must be a string")),
            None => return Err(fail(None, None, "`event` is required")),
        };
        let ack = match obj.remove("ack") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(a) if a <= MAX_ACK => Some(a),
                _ => {
                    return Err(fail(
                        Some(event),
                        None,
                        "`ack` must be an integer in 0..2^53-1",
                    ))
                }
            },
            Some(_) => {
                return Err(fail(
                    Some(event),
                    None,
                    "`ack` must be an integer in 0..2^53-1",
                ))
            }
        };
        let data = match obj.remove("data") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(fail(Some(event), ack, "`data` must be an object")),
        };
        Ok(Self { event, data, ack })
    }
}

/// Bounds on a frame's JSON shape, so no request costs more than its size
/// suggests.
#[derive(Debug, Clone, Copy)]
pub struct ShapeLimits {
    /// Deepest nesting of objects and arrays, `data` itself being 1.
    pub max_depth: usize,
    /// Most values in `data`, counted over the whole tree.
    pub max_values: usize,
}

impl Default for ShapeLimits {
    fn default() -> Self {
        Self {
            max_depth: 32,
            max_values: 4096,
        }
    }
}

/// Walks `v` (at nesting `depth`), counting values; false when over a limit.
fn within(v: &Value, depth: usize, limits: &ShapeLimits, values: &mut usize) -> bool {
    *values += 1;
    if *values > limits.max_values || depth > limits.max_depth {
        return false;
    }
    match v {
        Value::Array(a) => a.iter().all(|x| within(x, depth + 1, limits, values)),
        Value::Object(o) => o.values().all(|x| within(x, depth + 1, limits, values)),
        _ => true,
    }
}

/// A server frame, serialized once; cloning shares the bytes.
#[derive(Debug, Clone)]
pub struct OutFrame(pub Utf8Bytes);

#[derive(Serialize)]
struct Wire<'a, D: Serialize> {
    event: &'a str,
    data: D,
    #[serde(skip_serializing_if = "Option::is_none")]
    ack: Option<u64>,
}

impl OutFrame {
    /// Encodes a frame; `ack` only for replies.
    pub fn new<D: Serialize>(event: &str, data: D, ack: Option<u64>) -> Self {
        let text =
            serde_json::to_string(&Wire { event, data, ack }).expect("frames always serialize");
        Self(Utf8Bytes::from(text))
    }

    /// An `error` reply to the request `event` (None when unparseable).
    pub fn error(error: &ProtocolError, event: Option<&str>, ack: Option<u64>) -> Self {
        #[derive(Serialize)]
        struct ErrorData<'a> {
            code: &'a str,
            message: &'a str,
            event: Option<&'a str>,
        }
        Self::new(
            "error",
            ErrorData {
                code: error.code.as_str(),
                message: &error.message,
                event,
            },
            ack,
        )
    }

    /// The encoded text.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// The error code as a quick check in tests.
impl FrameError {
    /// The error's code.
    pub fn code(&self) -> ErrorCode {
        self.error.code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_frame() {
        let f =
            IncomingFrame::parse(r#"{"event":"login","data":{"username":"a"},"ack":7}"#).unwrap();
        assert_eq!(f.event, "login");
        assert_eq!(f.ack, Some(7));
        assert_eq!(f.data["username"], "a");
    }

    #[test]
    fn missing_data_is_empty() {
        let f = IncomingFrame::parse(r#"{"event":"logout"}"#).unwrap();
        assert!(f.data.is_empty());
        assert_eq!(f.ack, None);
    }

    #[test]
    fn rejects_bad_frames() {
        for bad in ["nope", "[]", "1", r#"{"data":{}}"#, r#"{"event":3}"#] {
            let e = IncomingFrame::parse(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::BadRequest);
            assert!(e.event.is_none());
        }
        let e = IncomingFrame::parse(r#"{"event":"x","ack":-1}"#).unwrap_err();
        assert_eq!(e.event.as_deref(), Some("x"));
        assert!(IncomingFrame::parse(r#"{"event":"x","ack":9007199254740992}"#).is_err());
        assert!(IncomingFrame::parse(r#"{"event":"x","ack":1.5}"#).is_err());
        let e = IncomingFrame::parse(r#"{"event":"x","data":[],"ack":1}"#).unwrap_err();
        assert_eq!(e.ack, Some(1));
    }

    #[test]
    fn shape_limits() {
        let limits = ShapeLimits {
            max_depth: 4,
            max_values: 16,
        };
        assert!(
            IncomingFrame::parse_limited(r#"{"event":"x","data":{"a":{"b":1}}}"#, limits).is_ok()
        );
        let deep = IncomingFrame::parse_limited(
            r#"{"event":"x","data":{"a":{"b":{"c":{"d":1}}}},"ack":2}"#,
            limits,
        )
        .unwrap_err();
        assert_eq!(deep.code(), ErrorCode::BadRequest);
        assert_eq!(deep.ack, Some(2));
        let wide = format!(
            r#"{{"event":"x","data":{{"a":[{}]}}}}"#,
            vec!["1"; 20].join(",")
        );
        assert!(IncomingFrame::parse_limited(&wide, limits).is_err());
    }

    #[test]
    fn encodes_replies_and_errors() {
        let f = OutFrame::new("login", serde_json::json!({"a":1}), Some(3));
        assert_eq!(f.as_str(), r#"{"event":"login","data":{"a":1},"ack":3}"#);
        let e = OutFrame::error(&ProtocolError::bad_request("x"), None, None);
        assert_eq!(
            e.as_str(),
            r#"{"event":"error","data":{"code":"bad_request","message":"x","event":null}}"#
        );
    }
}
