"""Kitchen: a cooperative two-player cooking game in the spirit of Overcooked.

Two cooks share a small kitchen and a score. Soup orders appear at the top of the screen; each names a recipe of
three ingredients (``OOO`` onion soup, ``TTT`` tomato soup, ``OOT`` onion-tomato soup) and expires after a while.
To fill one, the cooks fetch onions (``O``) and tomatoes (``T``) from their crates, put three into a pot (``P``),
which then cooks by itself for ``cook_time`` frames, take the soup out with a plate from the plate rack (``D``)
and hand it in at the serving window (``S``). Items can be put down on, and picked up from, any empty counter
(``#``). A delivered soup that matches an order pays ``order_reward`` to both cooks; a soup matching no order is
thrown away. Expired orders are replaced by new ones drawn from the env's RNG.

Actions (``Discrete(6)`` per cook): 0 stay, 1 up, 2 right, 3 down, 4 left, 5 interact. A move turns the cook to
face that way, and walks there if the cell is free floor; interact uses the cell the cook faces. Moves resolve
simultaneously (same target cell, or swapping places, blocks both). The episode ends after ``max_steps``
frames (``truncated``).

The env implements the explicit state protocol and renders a draw list. Load it as
``pyodide_runtime.examples.kitchen:make_env``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyodide_runtime.envs import draw
from pyodide_runtime.pyodide_compat import install_multiprocessing_stub

install_multiprocessing_stub()  # gymnasium imports _multiprocessing, absent in Pyodide
from gymnasium import spaces  # noqa: E402

__all__ = ["KitchenEnv", "make_env", "DEFAULT_CONFIG", "LAYOUT", "ACTION_NAMES", "RECIPES", "MOVES", "INTERACT"]

ACTION_NAMES = ("stay", "up", "right", "down", "left", "interact")
INTERACT = 5
#: (dx, dy) of actions 0..4.
MOVES = ((0, 0), (0, -1), (1, 0), (0, 1), (-1, 0))
RECIPES = ("OOO", "TTT", "OOT")

#: ``#`` counter, ``O``/``T`` onion/tomato crate, ``D`` plate rack, ``P`` pot, ``S`` serving window, ``1``/``2``
#: the cooks' start cells (floor), space floor.
LAYOUT = (
    "##O#P#T##",
    "#1      #",
    "D   #   S",
    "#      2#",
    "####P####",
)

DEFAULT_CONFIG: dict[str, Any] = {
    "cook_time": 40,
    "orders": 2,  # orders on display at once
    "order_time": 900,  # frames before an order expires
    "order_reward": 20,
    "max_steps": 1800,
    "cell_px": 56,
}

Cell = tuple[int, int]
_INGREDIENTS = {"O": "onion", "T": "tomato"}
_COLOURS = {"onion": "#e7c35a", "tomato": "#d9412b", "plate": "#fafafa"}
_COOK_COLOURS = ("#2f6fdf", "#2a9d4b")
_CHARSET = "abcdefghijklmnopqrstuvwxyz:OT"


def _validated(config: dict[str, Any] | None) -> dict[str, Any]:
    cfg = dict(DEFAULT_CONFIG)
    unknown = set(config or {}) - set(cfg)
    if unknown:
        raise ValueError(f"unknown kitchen config keys: {sorted(unknown)}; known keys: {sorted(cfg)}")
    cfg.update(config or {})
    for key, value in cfg.items():
        if type(value) is not int or value < 1:
            raise ValueError(f"kitchen config {key!r} must be a positive int, got {value!r}")
    if cfg["orders"] > 4:
        raise ValueError("kitchen shows at most 4 orders at once")
    return cfg


class KitchenEnv:
    """The kitchen with the PettingZoo parallel API (agents ``cook_0`` and ``cook_1``)."""

    metadata = {"name": "kitchen", "version": "1", "render_modes": ["draw_list"], "render_fps": 30}

    def __init__(self, config: dict[str, Any] | None = None, render_mode: str | None = "draw_list") -> None:
        cfg = _validated(config)
        self.config = cfg
        self.render_mode = render_mode
        self.layout = LAYOUT
        self.width, self.height = len(LAYOUT[0]), len(LAYOUT)
        self.possible_agents = ["cook_0", "cook_1"]
        self.agents: list[str] = []
        self.action_names = ACTION_NAMES
        self.max_steps: int = cfg["max_steps"]
        self._starts: list[Cell] = [self._find(str(i + 1)) for i in range(2)]
        self._pots: list[Cell] = [(x, y) for y, row in enumerate(LAYOUT) for x, c in enumerate(row) if c == "P"]
        self._action_space = spaces.Discrete(len(ACTION_NAMES))
        self._observation_space = spaces.Dict(
            {
                "position": spaces.Box(0, self.width, (2,), np.int64),
                "facing": spaces.Box(1, 4, (), np.int64),
                "holding": spaces.Text(8, charset=_CHARSET),
                "partner": spaces.Box(0, self.width, (2,), np.int64),
                "partner_holding": spaces.Text(8, charset=_CHARSET),
                # per pot: [contents, frames until cooked]; a full pot at 0 is ready
                "pots": spaces.Sequence(spaces.Tuple((spaces.Text(3, charset="OT"),
                                                      spaces.Discrete(cfg["cook_time"] + 1)))),
                "counters": spaces.Sequence(spaces.Tuple((spaces.Discrete(self.width), spaces.Discrete(self.height),
                                                          spaces.Text(8, charset=_CHARSET)))),
                "orders": spaces.Sequence(spaces.Tuple((spaces.Text(3, charset="OT"),
                                                        spaces.Discrete(cfg["order_time"] + 1)))),
                "time_left": spaces.Box(0, self.max_steps, (), np.int64),
            }
        )
        self.np_random: np.random.Generator = np.random.Generator(np.random.PCG64())
        self._t = 0
        self._positions: list[Cell] = []
        self._facing = [3, 3]
        self._held: list[str] = ["", ""]  # "", "onion", "tomato", "plate" or "soup:OOT"
        self._counters: dict[Cell, str] = {}  # items put down on counters
        self._pot_contents: list[str] = []  # sorted ingredient letters
        self._pot_timers: list[int] = []  # frames cooked; cook_time means ready
        self._orders: list[list[Any]] = []  # [recipe, frames left]
        self._delivered = 0
        self._over = True

    def _find(self, mark: str) -> Cell:
        for y, row in enumerate(LAYOUT):
            if mark in row:
                return (row.index(mark), y)
        raise ValueError(f"layout has no {mark!r}")

    def _tile(self, cell: Cell) -> str:
        x, y = cell
        if not (0 <= x < self.width and 0 <= y < self.height):
            return "#"
        tile = LAYOUT[y][x]
        return " " if tile in "12" else tile

    @property
    def unwrapped(self) -> KitchenEnv:
        return self

    def action_space(self, agent: str) -> spaces.Discrete:
        """Both cooks have ``Discrete(6)``: stay, up, right, down, left, interact."""
        return self._action_space

    def observation_space(self, agent: str) -> spaces.Dict:
        """Positions, held items, pots, items on counters and orders, as plain ints, strings and lists."""
        return self._observation_space

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start a shift; ``seed`` reseeds the env's RNG (PCG64 from ``SeedSequence(seed)``)."""
        if seed is not None:
            self.np_random = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))
        self._t = 0
        self._positions = list(self._starts)
        self._facing = [3, 3]
        self._held = ["", ""]
        self._counters = {}
        self._pot_contents = [""] * len(self._pots)
        self._pot_timers = [0] * len(self._pots)
        self._orders = [self._new_order() for _ in range(self.config["orders"])]
        self._delivered = 0
        self._over = False
        self.agents = list(self.possible_agents)
        return self._observations(), {a: {"event": "", "delivered": 0} for a in self.possible_agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        """Advance one frame. A missing cook stays; an action outside 0..5 raises ``ValueError``."""
        if self._over:
            raise RuntimeError("kitchen episode is over; call reset()")
        chosen = []
        for agent in self.possible_agents:
            action = int(actions.get(agent, 0))
            if not 0 <= action < len(ACTION_NAMES):
                raise ValueError(f"kitchen action for {agent} must be 0..5, got {action}")
            chosen.append(action)
        self._move(chosen)
        reward = 0.0
        events = ["", ""]
        for i, action in enumerate(chosen):  # cook 0 first: both grabbing the last item, cook 0 gets it
            if action == INTERACT:
                gained, events[i] = self._interact(i)
                reward += gained
        self._cook()
        self._expire_orders()
        self._t += 1
        self._over = self._t >= self.max_steps
        agents = self.possible_agents
        infos = {a: {"event": events[i], "delivered": self._delivered} for i, a in enumerate(agents)}
        if self._over:
            self.agents = []
        return (
            self._observations(),
            dict.fromkeys(agents, reward),
            dict.fromkeys(agents, False),
            dict.fromkeys(agents, self._over),
            infos,
        )

    def _move(self, actions: list[int]) -> None:
        pos = self._positions
        targets = list(pos)
        for i, action in enumerate(actions):
            if 1 <= action <= 4:
                self._facing[i] = action
                dx, dy = MOVES[action]
                cell = (pos[i][0] + dx, pos[i][1] + dy)
                if self._tile(cell) == " ":
                    targets[i] = cell
        same = targets[0] == targets[1]
        swap = targets[0] == pos[1] and targets[1] == pos[0]
        if same or swap:
            targets = list(pos)
        elif targets[0] == pos[1]:  # walking into a cook who stays put
            targets[0] = pos[0]
        elif targets[1] == pos[0]:
            targets[1] = pos[1]
        self._positions = targets

    def _facing_cell(self, i: int) -> Cell:
        dx, dy = MOVES[self._facing[i]]
        return (self._positions[i][0] + dx, self._positions[i][1] + dy)

    def _interact(self, i: int) -> tuple[float, str]:
        """Use the faced cell; returns (reward, what happened)."""
        cell = self._facing_cell(i)
        tile = self._tile(cell)
        held = self._held[i]
        if tile in _INGREDIENTS and not held:
            self._held[i] = _INGREDIENTS[tile]
            return 0.0, "took_" + _INGREDIENTS[tile]
        if tile == "D" and not held:
            self._held[i] = "plate"
            return 0.0, "took_plate"
        if tile == "#":
            item = self._counters.get(cell, "")
            if held and not item:
                self._counters[cell] = held
                self._held[i] = ""
                return 0.0, "put_down"
            if item and not held:
                self._held[i] = self._counters.pop(cell)
                return 0.0, "picked_up"
            return 0.0, ""
        if tile == "P":
            k = self._pots.index(cell)
            contents = self._pot_contents[k]
            if held in ("onion", "tomato") and len(contents) < 3:
                self._pot_contents[k] = "".join(sorted(contents + held[0].upper()))
                self._held[i] = ""
                return 0.0, "added_" + held
            if held == "plate" and self._pot_timers[k] >= self.config["cook_time"]:
                self._held[i] = "soup:" + contents
                self._pot_contents[k], self._pot_timers[k] = "", 0
                return 0.0, "took_soup"
            return 0.0, ""
        if tile == "S" and held.startswith("soup:"):
            recipe = held[5:]
            self._held[i] = ""
            for k, (wanted, _left) in enumerate(self._orders):
                if wanted == recipe:
                    self._orders[k] = self._new_order()
                    self._delivered += 1
                    return float(self.config["order_reward"]), "delivered"
            return 0.0, "wasted"
        return 0.0, ""

    def _cook(self) -> None:
        for k, contents in enumerate(self._pot_contents):
            if len(contents) == 3 and self._pot_timers[k] < self.config["cook_time"]:
                self._pot_timers[k] += 1

    def _expire_orders(self) -> None:
        for k, order in enumerate(self._orders):
            order[1] -= 1
            if order[1] <= 0:
                self._orders[k] = self._new_order()

    def _new_order(self) -> list[Any]:
        return [RECIPES[int(self.np_random.integers(len(RECIPES)))], self.config["order_time"]]

    def _observations(self) -> dict[str, dict[str, Any]]:
        cook_time = self.config["cook_time"]
        pots = [[c, cook_time - t] for c, t in zip(self._pot_contents, self._pot_timers)]
        counters = [[x, y, item] for (x, y), item in sorted(self._counters.items())]
        orders = [list(o) for o in self._orders]
        time_left = self.max_steps - self._t
        out = {}
        for i, agent in enumerate(self.possible_agents):
            j = 1 - i
            out[agent] = {
                "position": list(self._positions[i]),
                "facing": self._facing[i],
                "holding": self._held[i],
                "partner": list(self._positions[j]),
                "partner_holding": self._held[j],
                "pots": pots,
                "counters": counters,
                "orders": orders,
                "time_left": time_left,
            }
        return out

    # -- explicit state protocol ----------------------------------------------------------------------------------

    def get_state(self) -> tuple:
        """Everything ``step`` depends on, as immutable tuples plus the RNG's state dict (a fresh copy)."""
        return (self._t, tuple(self._positions), tuple(self._facing), tuple(self._held),
                tuple(sorted(self._counters.items())), tuple(self._pot_contents), tuple(self._pot_timers),
                tuple(tuple(o) for o in self._orders), self._delivered, self._over,
                self.np_random.bit_generator.state)

    def set_state(self, state: tuple) -> None:
        """Restore a state from :meth:`get_state`; the same state may be restored any number of times."""
        (t, positions, facing, held, counters, contents, timers, orders, delivered, over, rng_state) = state
        self._t, self._delivered, self._over = t, delivered, over
        self._positions, self._facing, self._held = list(positions), list(facing), list(held)
        self._counters = dict(counters)
        self._pot_contents, self._pot_timers = list(contents), list(timers)
        self._orders = [list(o) for o in orders]
        self.np_random.bit_generator.state = rng_state
        self.agents = [] if over else list(self.possible_agents)

    # -- rendering -------------------------------------------------------------------------------------------------

    def render(self) -> list[dict[str, Any]] | None:
        """A draw list: orders on top, then the kitchen tiles, items, pots and cooks, then the score."""
        if self.render_mode is None:
            return None
        c = self.config["cell_px"]
        top = c  # the order bar
        w, h = self.width * c, self.height * c + top + c // 2
        shapes = [draw.canvas(w, h, "#2b2b2b")]
        for k, (recipe, left) in enumerate(self._orders):
            x = 8 + k * 3 * c
            shapes.append(draw.rect(x, 6, 3 * c - 12, c - 12, "#f4f1e8", "#999999", 1))
            shapes.append(draw.text(x + 8, c * 0.62, recipe, "#222222", c // 3, "left", True))
            bar = (3 * c - 28) * left / self.config["order_time"]
            shapes.append(draw.rect(x + 8 + c * 1.2, c * 0.4, max(0.0, bar - c * 1.2), 6, "#2a9d4b"))
        tile_colours = {" ": "#e9e1cf", "#": "#b08a5a", "O": "#b08a5a", "T": "#b08a5a", "D": "#b08a5a",
                        "P": "#555555", "S": "#3c6e71"}
        for y in range(self.height):
            for x in range(self.width):
                tile = self._tile((x, y))
                shapes.append(draw.rect(x * c, top + y * c, c, c, tile_colours[tile], "#00000033", 1))
                label = {"O": ("onion", "O"), "T": ("tomato", "T"), "D": ("plate", "D")}.get(tile)
                if label:
                    shapes.append(draw.circle(x * c + c / 2, top + y * c + c / 2, c / 4, _COLOURS[label[0]],
                                              "#333333", 1))
                elif tile == "S":
                    shapes.append(draw.text(x * c + c / 2, top + y * c + c * 0.6, "serve", "#ffffff", c // 5,
                                            "center", True))
        for (x, y), item in sorted(self._counters.items()):
            shapes.extend(self._item(item, x * c + c / 2, top + y * c + c / 2, c))
        for k, (x, y) in enumerate(self._pots):
            contents, timer = self._pot_contents[k], self._pot_timers[k]
            ready = timer >= self.config["cook_time"]
            shapes.append(draw.circle(x * c + c / 2, top + y * c + c / 2, c * 0.38, "#7a7a7a" if not ready
                                      else "#f08a24", "#222222", 2))
            shapes.append(draw.text(x * c + c / 2, top + y * c + c * 0.58, contents or "-", "#ffffff", c // 4,
                                    "center", True))
            if len(contents) == 3 and not ready:
                shapes.append(draw.rect(x * c + 4, top + y * c + c - 10, (c - 8) * timer / self.config["cook_time"],
                                        6, "#f08a24"))
        for i, (x, y) in enumerate(self._positions):
            cx, cy = x * c + c / 2, top + y * c + c / 2
            shapes.append(draw.circle(cx, cy, c * 0.36, _COOK_COLOURS[i], "#ffffff", 2))
            dx, dy = MOVES[self._facing[i]]
            shapes.append(draw.line(cx, cy, cx + dx * c * 0.45, cy + dy * c * 0.45, "#ffffff", 3))
            if self._held[i]:
                shapes.extend(self._item(self._held[i], cx + c * 0.22, cy - c * 0.22, c * 0.6))
        status = f"delivered {self._delivered}    time {self.max_steps - self._t}"
        shapes.append(draw.text(8, h - c * 0.12, status, "#f4f1e8", c // 3, "left", True))
        return shapes

    @staticmethod
    def _item(item: str, x: float, y: float, size: float) -> list[dict[str, Any]]:
        if item.startswith("soup:"):
            return [draw.circle(x, y, size * 0.25, "#fafafa", "#333333", 1),
                    draw.circle(x, y, size * 0.17, "#f08a24"),
                    draw.text(x, y + size * 0.07, item[5:], "#222222", int(size // 5), "center", True)]
        return [draw.circle(x, y, size * 0.2, _COLOURS.get(item, "#ffffff"), "#333333", 1)]

    def close(self) -> None:
        """Nothing to release."""


def make_env(config: dict[str, Any] | None = None) -> KitchenEnv:
    """Build a kitchen env. Config keys and defaults: :data:`DEFAULT_CONFIG`."""
    return KitchenEnv(config)
