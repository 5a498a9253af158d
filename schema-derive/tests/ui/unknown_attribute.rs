use roomcast_schema::Schema;

#[derive(Schema)]
struct State {
    #[schema(numbr)]
    hp: f64,
}

fn main() {}
