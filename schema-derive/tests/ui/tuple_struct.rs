use roomcast_schema::Schema;

#[derive(Schema)]
struct Pair(u8, u8);

fn main() {}
