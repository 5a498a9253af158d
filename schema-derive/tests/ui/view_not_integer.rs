use roomcast_schema::Schema;

#[derive(Schema)]
struct S {
    #[schema(view = "owner")]
    a: u8,
}

fn main() {}
