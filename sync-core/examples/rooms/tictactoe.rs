//! Tic-tac-toe, the room of the Colyseus tutorial (`tutorial-tic-tac-toe`):
//! two players, a turn each, a random move when a turn runs out, and the
//! other player wins when one leaves. Its Node twin is
//! `tests/node/rooms/tictactoe.mjs`.

use std::time::Duration;

use roomcast::prelude::*;
use serde::Deserialize;

const TURN_TIMEOUT: Duration = Duration::from_secs(10);
const WIDTH: usize = 3;

#[derive(Schema, Default)]
pub(crate) struct State {
    #[schema(rename = "currentTurn")]
    current_turn: String,
    players: MapSchema<bool>,
    board: ArraySchema<u8>,
    winner: String,
    draw: bool,
}

#[derive(Deserialize)]
struct Action {
    x: usize,
    y: usize,
}

#[derive(Default)]
pub(crate) struct TicTacToe {
    auto_move: Option<TimerId>,
}

#[roomcast::room]
impl Room for TicTacToe {
    type State = Encoder<State>;

    async fn on_create(&mut self, ctx: &mut RoomCtx<Self>) {
        ctx.set_max_clients(2);
        let board = [0; WIDTH * WIDTH].into_iter().collect();
        ctx.state_mut().set_board(board);
        ctx.on_message("action", |room, ctx, client, a: Action| {
            room.play(ctx, client.session_id(), a.x, a.y);
        });
    }

    async fn on_join(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        let mut state = ctx.state_mut();
        state.players_mut().insert(client.session_id(), true);
        if state.players.len() == 2 {
            state.set_current_turn(client.session_id().to_owned());
            self.set_auto_move_timeout(ctx);
            ctx.lock();
        }
    }

    async fn on_leave(&mut self, ctx: &mut RoomCtx<Self>, client: &Client) {
        let mut state = ctx.state_mut();
        state.players_mut().remove(client.session_id());
        let remaining = state.players.keys().next().map(str::to_owned);
        if let (Some(other), "", false) = (remaining, state.winner.as_str(), state.draw) {
            state.set_winner(other);
        }
        if let Some(timer) = self.auto_move.take() {
            ctx.clock_mut().clear(timer);
        }
    }
}

impl TicTacToe {
    fn play(&mut self, ctx: &mut RoomCtx<Self>, session_id: &str, x: usize, y: usize) {
        let mut state = ctx.state_mut();
        let index = x + WIDTH * y;
        let over = !state.winner.is_empty() || state.draw;
        if over || session_id != state.current_turn || state.board.get(index) != Some(&0) {
            return;
        }
        let ids: Vec<String> = state.players.keys().map(str::to_owned).collect();
        let mark = if session_id == ids[0] { 1 } else { 2 };
        state.board_mut().set(index, mark);
        if wins(&state.board, x, y, mark) {
            state.set_winner(session_id.to_owned());
        } else if state.board.iter().all(|&cell| cell != 0) {
            state.set_draw(true);
        } else {
            state.set_current_turn(ids[usize::from(session_id == ids[0])].clone());
            self.set_auto_move_timeout(ctx);
        }
    }

    fn set_auto_move_timeout(&mut self, ctx: &mut RoomCtx<Self>) {
        if let Some(timer) = self.auto_move.take() {
            ctx.clock_mut().clear(timer);
        }
        let timer = ctx.clock_mut().set_timeout(TURN_TIMEOUT, |room, ctx| {
            // The first free cell, column by column.
            let free = (0..WIDTH * WIDTH)
                .find(|&i| ctx.state().board.get(i % WIDTH * WIDTH + i / WIDTH) == Some(&0));
            if let Some(i) = free {
                let turn = ctx.state().current_turn.clone();
                room.play(ctx, &turn, i / WIDTH, i % WIDTH);
            }
        });
        self.auto_move = Some(timer);
    }
}

/// Whether `mark` at (x, y) completes its column, its row or a diagonal.
fn wins(board: &ArraySchema<u8>, x: usize, y: usize, mark: u8) -> bool {
    let full =
        |cell: &dyn Fn(usize) -> usize| (0..WIDTH).all(|i| board.get(cell(i)) == Some(&mark));
    full(&|i| x + WIDTH * i)
        || full(&|i| i + WIDTH * y)
        || (x == y && full(&|i| i + WIDTH * i))
        || full(&|i| i + WIDTH * (WIDTH - 1 - i))
}
