//! Schema types serialize in the shape of the client's `state.toJSON()`:
//! structs as objects of their present fields (inherited fields first,
//! client names), maps as objects in insertion order, the other
//! collections as arrays, polymorphic children as their concrete type.
//! (The demo's `snapshot` message is this JSON; `tests/node/sdk/world.mjs`
//! compares it with the real SDKs' `toJSON()`.)

use roomcast_schema::{ArraySchema, Encoder, MapSchema, Schema, SetSchema};

#[derive(Schema, Default, Debug)]
struct Entity {
    x: f32,
    tag: Option<String>,
}

#[derive(Schema, Default, Debug)]
struct Hero {
    #[schema(extends)]
    base: Entity,
    #[schema(rename = "displayName")]
    name: String,
    pet: Option<Entity>,
}

#[derive(Schema, Debug)]
enum Unit {
    Entity(Entity),
    Hero(Hero),
}

#[derive(Schema, Default, Debug)]
struct World {
    units: MapSchema<Unit>,
    log: ArraySchema<String>,
    seen: SetSchema<u16>,
    round: u8,
    boss: Option<Hero>,
}

#[test]
fn a_state_serializes_as_to_json_shows_it() {
    let mut world = World {
        round: 3,
        ..World::default()
    };
    world.units.insert(
        "b",
        Unit::Hero(Hero {
            base: Entity {
                x: 1.5,
                tag: Some("t".into()),
            },
            name: "ana".into(),
            pet: None,
        }),
    );
    world
        .units
        .insert("a", Unit::Entity(Entity { x: 2.0, tag: None }));
    world.log.push("hi".into());
    world.seen.add(7);
    let mut enc = Encoder::new(world);
    let want = r#"{"units":{"b":{"x":1.5,"tag":"t","displayName":"ana"},"a":{"x":2.0}},"log":["hi"],"seen":[7],"round":3}"#;
    assert_eq!(serde_json::to_string(enc.state()).unwrap(), want);
    // The encoder serializes its state; tracked changes show at once.
    enc.state_mut().set_round(4);
    enc.state_mut().set_boss(Some(Hero::default()));
    let v = serde_json::to_value(&enc).unwrap();
    assert_eq!(v["round"], 4);
    assert_eq!(v["boss"], serde_json::json!({"x": 0.0, "displayName": ""}));
}
