"""The footer: the focused screen's main keys on one line.

Textual's own Footer is a container with a widget per key, recomposed (and restyled key by
key) each time the bindings change; on a big screen that was several full rebuilds during
start-up. This is one Line-API widget: it reads the active bindings when they change and
paints a single cached strip.
"""

from __future__ import annotations

from typing import ClassVar, NamedTuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.strip import Strip
from textual.widget import Widget


class FooterItem(NamedTuple):
    key: str  # the key to simulate on a click
    key_display: str
    description: str
    enabled: bool
    keep: bool = False  # shown even when the keys before it do not all fit (help)


PALETTE_LABEL = "palette"


class KeyFooter(Widget, can_focus=False):
    """The main keys (bindings with ``show=True``) of the focused widget and its screen."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {"key-footer--key", "key-footer--description", "key-footer--divider"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        & > .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-footer--divider { color: $foreground 20%; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._items: list[FooterItem] | None = None
        self._palette: FooterItem | None = None
        self._strip: tuple[int, Strip] | None = None
        # x ranges of the painted keys, for clicks
        self._hits: list[tuple[int, int, str]] = []

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: object) -> None:
        # read at the next paint, when focus has settled (one repaint of one line)
        self._items = None
        self._strip = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strip = None

    @property
    def items(self) -> list[FooterItem]:
        """The keys shown now, left to right (the command palette key is drawn at the right)."""
        if self._items is None:
            self._items, self._palette = self._read_bindings()
        return list(self._items)

    def _read_bindings(self) -> tuple[list[FooterItem], FooterItem | None]:
        app = self.app
        bindings = self.screen.active_bindings
        items: list[FooterItem] = []
        seen: set[str] = set()
        for _node, binding, enabled, _tooltip in bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)  # several keys for one action: the first is shown
            items.append(FooterItem(binding.key, app.get_key_display(binding), binding.description, enabled,
                                    keep=binding.id == "app.help"))
        palette = None
        if app.ENABLE_COMMAND_PALETTE:
            active = bindings.get(app.COMMAND_PALETTE_BINDING)
            if active is not None:
                _node, binding, enabled, _tooltip = active
                palette = FooterItem(binding.key, app.get_key_display(binding), PALETTE_LABEL, enabled)
        return items, palette

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if self._strip is not None and self._strip[0] == width:
            return self._strip[1]
        strip = self._render_strip(width)
        self._strip = (width, strip)
        return strip

    def _render_strip(self, width: int) -> Strip:
        if self._items is None:
            self._items, self._palette = self._read_bindings()
        base = self.rich_style
        key_style = base + self.get_component_rich_style("key-footer--key")
        desc_style = base + self.get_component_rich_style("key-footer--description")
        dim = Style(dim=True)
        divider = base + Style(color=self.get_component_rich_style("key-footer--divider").color)
        right: list[Segment] = []
        right_cells = 0
        if self._palette is not None:
            p = self._palette
            right = [Segment("▏", divider), Segment(p.key_display, key_style), Segment(f" {p.description} ", desc_style)]
            right_cells = 1 + cell_len(p.key_display) + cell_len(p.description) + 2
        segments: list[Segment] = []
        hits: list[tuple[int, int, str]] = []
        x = 0
        room = max(0, width - right_cells)

        def cells_of(item: FooterItem) -> int:
            return cell_len(f" {item.key_display} ") + cell_len(f"{item.description} ")

        kept = [i for i in self._items if i.keep]
        if sum(cells_of(i) for i in self._items) > room:
            room -= sum(cells_of(i) for i in kept)  # help stays on screen when other keys must go
            items = [i for i in self._items if not i.keep]
        else:
            kept, items = [], self._items
        full = False
        for item in [*items, *kept]:
            key_text = f" {item.key_display} "
            desc_text = f"{item.description} "
            cells = cell_len(key_text) + cell_len(desc_text)
            if not item.keep and (full or x + cells > room):
                full = True  # whole keys only, in order: a key cut in half helps no one
                continue
            k, d = (key_style, desc_style) if item.enabled else (key_style + dim, desc_style + dim)
            segments += [Segment(key_text, k), Segment(desc_text, d)]
            hits.append((x, x + cells, item.key))
            x += cells
        if right and x + right_cells <= width:
            segments.append(Segment(" " * (width - x - right_cells), base))
            hits.append((width - right_cells, width, self._palette.key))  # type: ignore[union-attr]
            segments += right
        self._hits = hits
        return Strip(segments).adjust_cell_length(width, base)

    def on_click(self, event: events.Click) -> None:
        for start, end, key in self._hits:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return
