//! Request parsing: every event's shapes, and bad input refused with the
//! right code.

use super::*;
use serde_json::json;

const L: Limits = Limits {
    max_content_bytes: 10,
};

fn parse(event: &str, data: Value) -> Result<Request, ProtocolError> {
    let Value::Object(m) = data else { panic!() };
    Request::parse(event, m, &L)
}

#[test]
fn content_limits() {
    assert_eq!(
        parse("send_message", json!({"lobby":{"id":"l"},"content":""}))
            .unwrap_err()
            .code,
        ErrorCode::BadRequest
    );
    assert_eq!(
        parse(
            "send_message",
            json!({"lobby":{"id":"l"},"content":"01234567890"})
        )
        .unwrap_err()
        .code,
        ErrorCode::PayloadTooLarge
    );
    assert!(parse(
        "send_message",
        json!({"lobby":{"id":"l"},"content":"0123456789"})
    )
    .is_ok());
}

#[test]
fn connect_lobby_validation() {
    assert!(parse("connect_lobby", json!({})).is_err());
    assert!(parse("connect_lobby", json!({"lobby":{"id":""}})).is_err());
    assert!(parse("connect_lobby", json!({"lobby":{"sizeLimit":0}})).is_err());
    assert!(matches!(
        parse("connect_lobby", json!({"lobby":{}})),
        Ok(Request::ConnectLobby { id: None, .. })
    ));
}

#[test]
fn get_all_data_paging() {
    assert!(parse("get_all_data", json!({"type":"users","limit":0})).is_err());
    assert!(parse("get_all_data", json!({"type":"users","limit":501})).is_err());
    assert!(parse(
        "get_all_data",
        json!({"type":"messages","lobby":{"id":"l"},"after":1,"cursor":"x"})
    )
    .is_err());
    assert!(parse("get_all_data", json!({"type":"messages"})).is_err());
    assert!(parse(
        "get_all_data",
        json!({"type":"messages","lobby":{"id":"l"},"after":3})
    )
    .is_ok());
}

#[test]
fn update_fields_per_type() {
    assert!(parse("update_data", json!({"type":"users","id":"u","data":{}})).is_err());
    assert!(parse(
        "update_data",
        json!({"type":"users","id":"u","data":{"token":"x"}})
    )
    .is_err());
    assert!(parse(
        "update_data",
        json!({"type":"users","id":"u","data":{"username":"n"}})
    )
    .is_ok());
    assert!(parse(
        "update_data",
        json!({"type":"lobbys","id":"l","data":{"sizeLimit":0}})
    )
    .is_err());
    assert!(parse(
        "update_data",
        json!({"type":"messages","id":"m","data":{"content":"x"}})
    )
    .is_err());
    assert!(parse(
        "update_data",
        json!({"type":"messages","id":"m","lobby":{"id":"l"},"data":{"content":"x"}})
    )
    .is_ok());
}

#[test]
fn actions() {
    let a = |name: &str, args: Value| {
        parse(
            "use_action",
            json!({"type":"lobbys","id":"l","action":name,"actionArgs":args}),
        )
    };
    assert!(a("nope", json!([])).is_err());
    assert!(a("setVisibility", json!(["yes"])).is_err());
    assert_eq!(
        a("setToken", json!([null])).unwrap(),
        Request::UseAction {
            target: Target::Lobby(LobbyId::from("l")),
            token: None,
            action: Action::SetToken(None)
        }
    );
    assert!(a("addUsers", json!([["a", "b"]])).is_ok());
    assert!(a("addUsers", json!(["a"])).is_err());
}

#[test]
fn unknown_events_are_custom() {
    assert!(matches!(
        parse("roll_dice", json!({"n":1})),
        Ok(Request::Custom { .. })
    ));
}
