use roomcast_schema::Schema;

#[derive(Schema, Default)]
struct Base {
    x: u8,
}

#[derive(Schema)]
struct Derived {
    y: u8,
    #[schema(extends)]
    base: Base,
}

fn main() {}
