"""PsyCoPref policies side by side, and blind A/B votes: the Space's entry point.

The logic lives in `hub_tools.arena` (tested there); this file only builds the app from the config next
to it (or $PSYCOPREF_SPACE_CONFIG) and launches it.
"""

from pathlib import Path

from hub_tools.arena.app import create_space

space = create_space(Path(__file__).parent)
demo = space.blocks  # the gradio app, at module level as Spaces expect

if __name__ == "__main__":
    space.launch()
