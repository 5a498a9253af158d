use roomcast_schema::Schema;

#[derive(Schema)]
struct State {
    #[schema(quantized(min = 0.0, max = 1.0, bits = 12))]
    throttle: f32,
}

fn main() {}
