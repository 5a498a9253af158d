use roomcast_schema::Schema;

#[derive(Schema)]
struct S {
    #[schema(view = 0)]
    a: u8,
}

fn main() {}
