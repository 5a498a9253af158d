use roomcast_schema::Schema;

#[derive(Schema)]
struct State {
    #[schema(quantized(min = 1.0, max = 1.0))]
    throttle: f32,
}

fn main() {}
