use roomcast_schema::Schema;

#[derive(Schema)]
struct Holder<T> {
    value: T,
}

fn main() {}
