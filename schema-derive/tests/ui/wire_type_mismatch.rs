use roomcast_schema::Schema;

#[derive(Schema)]
struct State {
    #[schema(uint8)]
    name: String,
}

fn main() {}
