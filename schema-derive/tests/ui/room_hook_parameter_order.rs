// Hook parameters come in the trait's order.
struct Game;

#[roomcast_schema_derive::room]
impl Room for Game {
    async fn on_leave(&mut self, code: u16, client: &Client) {}
}

fn main() {
    let _ = Game;
}
