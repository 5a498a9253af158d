// A hook parameter whose type is none of the hook's.
struct Player;

struct Game;

#[roomcast_schema_derive::room]
impl Room for Game {
    async fn on_join(&mut self, client: &Client, player: &Player) {}
}

fn main() {
    let _ = (Game, Player);
}
