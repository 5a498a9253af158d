use roomcast_schema::Schema;

#[derive(Schema, Default)]
struct Entity {
    x: u8,
}

#[derive(Schema)]
enum Any {
    Entity(Entity),
    Nothing,
}

fn main() {}
