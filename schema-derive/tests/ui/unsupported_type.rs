use roomcast_schema::Schema;

#[derive(Schema)]
struct State {
    ok: u8,
    bytes: Vec<u8>,
}

fn main() {}
