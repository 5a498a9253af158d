//! Change callbacks of the dynamic decoder: what fires, with which values,
//! in which order, and registration from inside a callback.

use std::sync::{Arc, Mutex};

use roomcast_schema::decoder::{At, CallbackError, DynamicDecoder, Key, RefId, Value};
use roomcast_schema::types::{
    CollectionKind, NamedField, NamedFieldType, NamedType, Primitive, TypeRegistry,
};
use roomcast_schema::wire;

/// `State { players: map<Player>, round: uint8 }`, `Player { name: string, hp: uint8 }`.
fn types() -> TypeRegistry {
    let f = |name: &str, ty| NamedField {
        name: name.into(),
        ty,
    };
    TypeRegistry::from_named(
        "State",
        &[
            NamedType {
                name: "State".into(),
                extends: None,
                fields: vec![
                    f(
                        "players",
                        NamedFieldType::SchemaCollection(CollectionKind::Map, "Player".into()),
                    ),
                    f("round", NamedFieldType::Primitive(Primitive::Uint8)),
                ],
            },
            NamedType {
                name: "Player".into(),
                extends: None,
                fields: vec![
                    f("name", NamedFieldType::Primitive(Primitive::String)),
                    f("hp", NamedFieldType::Primitive(Primitive::Uint8)),
                ],
            },
        ],
    )
    .expect("types")
}

fn bytes(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn s(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode_str(&mut out, text);
    out
}

type Log = Arc<Mutex<Vec<String>>>;

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "-".to_owned(), ToString::to_string)
}

#[test]
fn jssdk_style_flow() {
    let mut d = DynamicDecoder::new(types());
    let log: Log = Arc::default();

    // Registered before the map exists: follows the field.
    let l = Arc::clone(&log);
    d.callbacks()
        .on_add(At::Field(RefId::ROOT, "players"), move |cx, key, player| {
            let id = player.as_ref_id().expect("a player ref");
            let name = cx
                .node(id)
                .and_then(|p| p.field("name"))
                .and_then(|v| v.primitive().cloned());
            l.lock()
                .unwrap()
                .push(format!("add {key} {}", show(name.as_ref())));
            let l2 = Arc::clone(&l);
            let k = key.clone();
            cx.listen(id, "hp", move |_, hp, prev| {
                l2.lock()
                    .unwrap()
                    .push(format!("hp {k} {} <- {}", show(hp), show(prev)));
            })
            .expect("listen on the new player");
        })
        .expect("on_add");
    let l = Arc::clone(&log);
    d.callbacks()
        .on_remove(At::Field(RefId::ROOT, "players"), move |cx, key, player| {
            // The removed child is still readable during dispatch.
            let id = player.as_ref_id().expect("a player ref");
            let hp = cx
                .node(id)
                .and_then(|p| p.field("hp"))
                .and_then(|v| v.primitive().cloned());
            l.lock()
                .unwrap()
                .push(format!("remove {key} hp={}", show(hp.as_ref())));
        })
        .expect("on_remove");
    let l = Arc::clone(&log);
    d.callbacks()
        .listen(RefId::ROOT, "round", move |_, v, prev| {
            l.lock()
                .unwrap()
                .push(format!("round {} <- {}", show(v), show(prev)));
        })
        .expect("listen");
    let l = Arc::clone(&log);
    d.callbacks()
        .on_change(At::Ref(RefId::ROOT), move |_, entry| {
            assert!(entry.is_none());
            l.lock().unwrap().push("root changed".into());
        })
        .expect("on_change");
    assert_eq!(
        d.callbacks()
            .listen(RefId::ROOT, "nope", |_, _, _| {})
            .unwrap_err(),
        CallbackError::UnknownField
    );

    // Full state: players #1 {a: #2 {Alice, 10}}, round 1.
    d.decode(&bytes(&[
        &[0x80, 0x01, 0x81, 0x01, 0xff, 0x01, 0x80, 0x00],
        &s("a"),
        &[0x02, 0xff, 0x02, 0x80],
        &s("Alice"),
        &[0x81, 10],
    ]))
    .expect("full");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "root changed",
            "round 1 <- -",
            "add a \"Alice\"",
            "hp a 10 <- -"
        ]
    );
    log.lock().unwrap().clear();

    // Patch: hp 10 -> 7 and round 1 -> 2 (root block last), then a patch
    // removing "a".
    d.decode(&[0xff, 0x02, 0x81, 7, 0xff, 0x00, 0x81, 0x02])
        .expect("patch");
    d.decode(&[0xff, 0x01, 0x40, 0x00]).expect("delete");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "hp a 7 <- 10",
            "root changed",
            "round 2 <- 1",
            "remove a hp=7"
        ]
    );
    // The removed player was collected after the dispatch.
    assert!(d.node(RefId(2)).is_none());
}

#[test]
fn collection_entry_changes_and_replacement() {
    let mut d = DynamicDecoder::new(types());
    let log: Log = Arc::default();
    let l = Arc::clone(&log);
    d.callbacks()
        .on_change(At::Field(RefId::ROOT, "players"), move |_, entry| {
            let (key, value) = entry.expect("collection entry");
            l.lock()
                .unwrap()
                .push(format!("change {key} {}", show(value)));
        })
        .expect("on_change");
    let l = Arc::clone(&log);
    d.callbacks()
        .on_remove(At::Field(RefId::ROOT, "players"), move |_, key, _| {
            l.lock().unwrap().push(format!("remove {key}"));
        })
        .expect("on_remove");
    d.decode(&bytes(&[
        &[0x80, 0x01, 0xff, 0x01, 0x80, 0x00],
        &s("a"),
        &[0x02, 0x80, 0x01],
        &s("b"),
        &[0x03],
    ]))
    .expect("full");
    // The field gets a new map (#4, empty): the old map's entries are
    // reported removed, and callbacks follow the new map.
    d.decode(&bytes(&[
        &[0xc0, 0x04, 0xff, 0x04, 0x80, 0x00],
        &s("c"),
        &[0x05],
    ]))
    .expect("replace map");
    assert_eq!(
        *log.lock().unwrap(),
        [
            "change a #2",
            "change b #3",
            "remove a",
            "remove b",
            "change c #5"
        ]
    );
    assert_eq!(d.to_json(), r#"{"players":{"c":{}}}"#);
}

#[test]
fn removing_a_callback() {
    let mut d = DynamicDecoder::new(types());
    let count = Arc::new(Mutex::new(0));
    let c = Arc::clone(&count);
    let handle = d
        .callbacks()
        .listen(RefId::ROOT, "round", move |_, _, _| *c.lock().unwrap() += 1)
        .expect("listen");
    d.decode(&[0x81, 1]).expect("patch");
    d.callbacks().remove(handle);
    d.decode(&[0x81, 2]).expect("patch");
    assert_eq!(*count.lock().unwrap(), 1);
}

#[test]
fn keys_display() {
    assert_eq!(Key::Str("a".into()).to_string(), "a");
    assert_eq!(Key::Index(3).to_string(), "3");
}
