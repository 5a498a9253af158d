use roomcast_schema::Schema;

#[derive(Schema)]
struct State {
    #[schema(quantized(min = 0.0, max = 1.0, bits = 32))]
    fine: f32,
}

fn main() {}
