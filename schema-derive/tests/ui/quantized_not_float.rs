use roomcast_schema::Schema;

#[derive(Schema)]
struct State {
    #[schema(quantized(min = 0, max = 100))]
    hp: u8,
}

fn main() {}
